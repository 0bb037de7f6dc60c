"""Every malformed file gives one DataError naming the file and the key; the CLI prints
it and exits non-zero without a traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pytest

from engine.errors import DataError
from engine.io.columns import empty_params
from engine.io.pfsspec import SpectrumFile, write_spectra

N, W = 12, 32
LOGG_ENGINE = str(Path(sys.executable).parent / "logg-engine")


def _good(path, **kw):
    rng = np.random.default_rng(0)
    p = empty_params(N)
    p["log_g"] = rng.uniform(1, 5, N)
    args = dict(wave=np.arange(W) + 7100.0, flux=0.5 + 0.1 * rng.random((N, W)),
                error=np.full((N, W), 0.05), params=p)
    args.update(kw)
    write_spectra(path, **args)
    return path


def _del(key):
    def f(path):
        with h5py.File(path, "a") as h:
            del h[key]
    return f


def _replace(key, data):
    def f(path):
        with h5py.File(path, "a") as h:
            del h[key]
            h.create_dataset(key, data=data)
    return f


def _flux_nan(path):
    with h5py.File(path, "a") as h:
        h["dataset/arrays/flux/value"][5, 3] = np.nan


def _flux_inf(path):
    with h5py.File(path, "a") as h:
        h["dataset/arrays/flux/value"][2, 0] = np.inf


def _err_zero(path):
    with h5py.File(path, "a") as h:
        h["dataset/arrays/error/value"][4, 9] = 0.0


def _err_neg(path):
    with h5py.File(path, "a") as h:
        h["dataset/arrays/error/value"][4, 9] = -1.0


def _err_row_unwritten(path):
    with h5py.File(path, "a") as h:
        h["dataset/arrays/error/value"][11] = 0.0


def _params_mod(fn):
    def f(path):
        df = pd.read_hdf(path, key="dataset/params")
        df = fn(df)
        with h5py.File(path, "a") as h:
            del h["dataset/params"]
        df.to_hdf(path, key="dataset/params", format="table", mode="a")
    return f


def _empty(path):
    path.write_bytes(b"")


def _truncate(path):
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 3])


def _garbage(path):
    path.write_bytes(b"not an hdf5 file at all" * 100)


CASES = {
    "no_flux": (_del("dataset/arrays/flux"), "dataset/arrays/flux/value", "open"),
    "no_params": (_del("dataset/params"), "dataset/params", "open"),
    "no_wave": (_del("spectrumdataset/wave"), "spectrumdataset/wave", "open"),
    "error_shape": (_replace("dataset/arrays/error/value", np.ones((N - 1, W))),
                    "dataset/arrays/error/value", "open"),
    "params_rows": (_params_mod(lambda d: d.iloc[:-2]), "dataset/params", "open"),
    "flux_nan": (_flux_nan, "dataset/arrays/flux/value", "validate"),
    "flux_inf": (_flux_inf, "dataset/arrays/flux/value", "validate"),
    "error_zero": (_err_zero, "dataset/arrays/error/value", "validate"),
    "error_negative": (_err_neg, "dataset/arrays/error/value", "validate"),
    "error_row_unwritten": (_err_row_unwritten, "dataset/arrays/error/value", "validate"),
    "empty_file": (_empty, None, "open"),
    "truncated_file": (_truncate, None, "open"),
    "not_hdf5": (_garbage, None, "open"),
    "flux_int": (_replace("dataset/arrays/flux/value", np.ones((N, W), np.int64)),
                 "dataset/arrays/flux/value", "open"),
    "flux_strings": (_replace("dataset/arrays/flux/value", np.full((N, W), b"x")),
                     "dataset/arrays/flux/value", "open"),
    "mask_float": (_replace("dataset/arrays/mask/value", np.zeros((N, W))),
                   "dataset/arrays/mask/value", "open"),
    "zero_rows": (_replace("dataset/arrays/flux/value", np.ones((0, W))),
                  "dataset/arrays/flux/value", "open"),
    "params_id": (_params_mod(lambda d: d.assign(id=d["id"].to_numpy()[::-1].copy())),
                  "dataset/params:id", "validate"),
    "params_log_g_str": (_params_mod(lambda d: d.assign(log_g=["x"] * len(d))),
                         "dataset/params:log_g", "validate"),
}


def _open_and_validate(path):
    with SpectrumFile(path) as sf:
        sf.validate()


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_file_raises_data_error(tmp_path, case):
    breaker, key, stage = CASES[case]
    path = _good(tmp_path / "dataset.h5")
    breaker(path)
    if stage == "validate":  # opening is fine, reading finds it
        SpectrumFile(path).close()
    with pytest.raises(DataError) as info:
        _open_and_validate(path)
    msg = str(info.value)
    assert str(path) in msg
    if key:
        assert f"[{key}]" in msg
    assert "fix:" in msg


def test_masked_zero_error_is_fine(tmp_path):
    mask = np.zeros((N, W), np.int64)
    mask[4, 9] = 1
    err = np.full((N, W), 0.05)
    err[4, 9] = 0.0
    path = _good(tmp_path / "dataset.h5", error=err, mask=mask)
    with SpectrumFile(path) as sf:
        assert sf.validate()["rows_checked"] == N
        assert sf.read("error")[4, 9] == 0.0


@pytest.mark.parametrize("case", ["no_params", "flux_nan", "truncated_file", "params_id"])
def test_cli_inspect_bad_file(tmp_path, case):
    path = _good(tmp_path / "dataset.h5")
    CASES[case][0](path)
    proc = subprocess.run([LOGG_ENGINE, "data", "inspect", str(path)],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 3, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    assert "dataset.h5" in (proc.stdout + proc.stderr)
