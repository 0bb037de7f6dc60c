"""`logg-engine data inspect` on real files, through the real CLI (subprocess)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np

from engine.io.columns import empty_params
from engine.io.dataset import write_manifest
from engine.io.inspect import inspect_path
from engine.io.pfsspec import write_spectra
from engine.io.snr import snr_pfsspec

LOGG_ENGINE = str(Path(sys.executable).parent / "logg-engine")


def _file(path, n=60, w=128, seed=0):
    rng = np.random.default_rng(seed)
    flux = 0.5 + 0.1 * rng.random((n, w))
    error = 0.01 + 0.05 * rng.random((n, w))
    error[:, 0] = np.nan
    error[2, 40] = np.nan
    p = empty_params(n)
    p["log_g"] = rng.uniform(1, 5, n)
    p["T_eff"] = rng.uniform(3750, 6000, n)
    filled = error.copy()
    filled[:, 0] = filled[:, 1]
    filled[2, 40] = filled[2, 39]
    p["snr"] = snr_pfsspec(flux.astype(np.float32), filled.astype(np.float32)) * 1.1
    write_spectra(path, wave=np.linspace(7100, 8850, w), flux=flux, error=error, params=p)
    return p


def test_inspect_file_values(tmp_path):
    path = tmp_path / "dataset.h5"
    p = _file(path)
    rep = inspect_path(path, sample_rows=1000)
    assert rep["n_rows"] == 60 and rep["n_pixels"] == 128
    assert rep["arrays"]["flux"] == {"shape": [60, 128], "dtype": "float32", "chunks": None,
                                     "compression": None, "nbytes": 60 * 128 * 4}
    assert rep["arrays"]["mask"]["dtype"] == "int64"
    r = rep["params"]["ranges"]["T_eff"]
    assert r["min"] == round(p["T_eff"].min(), 6) and r["max"] == round(p["T_eff"].max(), 6)
    assert r["median"] == round(float(np.median(p["T_eff"])), 6)
    assert "fiberid" in rep["params"]["all_nan_columns"]
    assert "log_g" not in rep["params"]["all_nan_columns"]
    assert rep["nan_filled_error"] == {"edge": 60, "interior": 1, "rows_checked": 60}
    assert abs(rep["sample"]["stored_snr_over_q95"]["median"] - 1.1) < 1e-5
    assert rep["validation"]["ok"] is True


def test_cli_inspect_dataset_json(tmp_path):
    root = tmp_path / "datasets" / "mini"
    for name, n in (("train_1k_0", 30), ("train_1k_1", 20), ("val_500", 10), ("test_1k_0", 15)):
        _file(root / name / "dataset.h5", n=n)
    write_manifest(root, name="mini", preset="tiny", seed=1, noise_level=1.0,
                   shards={"train_1k_0": 30},
                   extra={"generator_version": "2.2", "crlb_method": "exact",
                          "generator": {"physics": "lte", "device": "cpu"}})
    proc = subprocess.run([LOGG_ENGINE, "data", "inspect", "mini", "--json",
                           "--workspace", str(tmp_path)],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    rep = json.loads(proc.stdout)
    assert rep["kind"] == "dataset" and rep["name"] == "mini"
    assert rep["aliases"] == {"train": ["train_1k_0", "train_1k_1"], "val": ["val_500"],
                              "test": ["test_1k_0"]}
    assert rep["train_rows"] == 50
    assert rep["shards"]["val_500"]["nan_filled_error"]["edge"] == 10
    # table output works too and mentions the counts
    proc = subprocess.run([LOGG_ENGINE, "data", "inspect", str(root)],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "all shards valid" in proc.stdout and "edge 30" in proc.stdout
    # provenance of a built-in dataset: which generator, preset, seed, CRLB method, device
    assert ("built by generator 2.2 (lte) · preset tiny · seed 1 · CRLB exact · on cpu"
            in proc.stdout)


def test_cli_inspect_reports_invalid_values(tmp_path):
    path = tmp_path / "dataset.h5"
    _file(path)
    with h5py.File(path, "a") as h:
        h["dataset/arrays/flux/value"][33, 5] = np.nan
    proc = subprocess.run([LOGG_ENGINE, "data", "inspect", str(path), "--json"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 3
    rep = json.loads(proc.stdout)
    assert rep["validation"]["ok"] is False
    assert "row 33" in rep["validation"]["error"]
    assert "[dataset/arrays/flux/value]" in rep["validation"]["error"]
    assert "Traceback" not in proc.stderr


def test_cli_inspect_dataset_with_a_broken_shard(tmp_path):
    root = tmp_path / "ds"
    _file(root / "train_1k_0" / "dataset.h5", n=20)
    _file(root / "test_1k_0" / "dataset.h5", n=20)
    (root / "train_1k_0" / "dataset.h5").write_bytes(b"\0" * 100)  # corrupt
    proc = subprocess.run([LOGG_ENGINE, "data", "inspect", str(root), "--json"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 3, proc.stderr
    rep = json.loads(proc.stdout)
    assert rep["shards"]["train_1k_0"]["validation"]["ok"] is False
    assert "not a readable HDF5 file" in rep["shards"]["train_1k_0"]["validation"]["error"]
    assert rep["shards"]["test_1k_0"]["validation"]["ok"] is True
    proc = subprocess.run([LOGG_ENGINE, "data", "inspect", str(root)],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 3 and "Traceback" not in proc.stderr
    assert "INVALID" in proc.stdout and "some shards are invalid" in proc.stdout
