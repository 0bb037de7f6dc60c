"""The dataset builder: pfsspec layout read back through engine.io, the 35 columns +
logg extras, frozen test noise, resume without redoing finished shards, determinism, and
the CLI's bad-option handling."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from engine.errors import SpecError
from engine.generator.build import build_dataset
from engine.generator.presets import Preset, ShardSpec, get_preset, with_train_size
from engine.io.columns import PFSSPEC_COLUMN_NAMES
from engine.io.dataset import Dataset
from engine.io.seeded_noise import add_noise, stream_id
from engine.io.snr import snr_l2, snr_median, snr_pfsspec

MICRO = Preset("micro", (ShardSpec("train_16_0", 16), ShardSpec("test_4_0", 4, crlb=True, noisy=True)))
NAN_COLUMNS = ("ext", "fiberid", "cont_fit", "random_seed", "Fe_H", "Fe_H_err", "M_H_err",
               "a_M_err", "C_M_err", "O_M", "O_M_err", "T_eff_err", "log_g_err", "N_He",
               "v_turb", "L_H")


def _log_cb(store):
    return lambda event, **f: store.append((event, f))


def test_tiny_dataset_layout_and_columns(tiny_dataset):
    ds = Dataset(tiny_dataset)
    assert ds.shards == ("test_200_0", "train_1k_0", "val_100")
    man = json.loads((tiny_dataset / "dataset.json").read_text())
    assert man["noise_level"] == 1.0 and man["complete"] is True and man["preset"] == "tiny"
    assert man["shards"] == {"train_1k_0": 1000, "val_100": 100, "test_200_0": 200}
    assert man["generator"]["device"] == "cpu"        # provenance: where it was computed
    test = ds.split("test")
    p = test.params
    assert list(p.columns[:35]) == list(PFSSPEC_COLUMN_NAMES)
    assert {"snr_median", "snr_l2", "crlb_log_g", "crlb_schur"} <= set(p.columns)
    assert (p["exp_count"] == 12).all() and (p["exp_time"] == 900.0).all()
    assert (p["moon_phase"] == 0).all() and (p["redshift"] == 0).all()
    assert p[list(NAN_COLUMNS)].isna().all().all()
    assert (p["interp_param"] == "").all()
    assert p["mag"].between(20.5, 22.5).all() and p["seeing"].between(0.5, 1.5).all()
    assert p["T_eff"].between(3750, 6000).all() and p["log_g"].between(1, 5).all()
    flux, err = test.read("flux"), test.read("error")
    np.testing.assert_allclose(np.median(flux, axis=1), 0.5, rtol=1e-5)
    np.testing.assert_allclose(p["snr"], snr_pfsspec(flux, err), rtol=1e-6)
    np.testing.assert_allclose(p["snr_median"], snr_median(flux, err), rtol=1e-6)
    np.testing.assert_allclose(p["snr_l2"], snr_l2(flux, err), rtol=1e-6)
    # the stored frozen noise is engine.io's seed-42 realisation for this split
    assert test.has("noisy") and not ds.split("train").has("noisy")
    expect = add_noise(flux, err, 1.0, seed=42, stream=stream_id("test_200_0"), start=0)
    np.testing.assert_array_equal(test.read("noisy"), expect)


def test_build_resume_determinism_and_crlb(tmp_path):
    events = []
    a = build_dataset(MICRO, out=tmp_path / "a", seed=5, callbacks=[_log_cb(events)])
    ds = Dataset(a)
    p = ds.split("test").params
    assert np.isfinite(p["crlb_log_g"]).all() and (p["crlb_log_g"] > 0).all()
    assert ((p["crlb_schur"] > 0) & (p["crlb_schur"] <= 1)).all()
    assert ds.split("train").params["crlb_log_g"].isna().all()
    files = {s: (a / s / "dataset.h5") for s in ("train_16_0", "test_4_0")}
    mtimes = {s: f.stat().st_mtime_ns for s, f in files.items()}
    train_flux = ds.split("train").read("flux").copy()
    ds.close()
    # resume: nothing to redo
    again = []
    build_dataset(MICRO, out=a, seed=5, callbacks=[_log_cb(again)])
    assert sum(1 for e, f in again if e == "log" and f["message"].startswith("skip")) == 2
    assert {s: f.stat().st_mtime_ns for s, f in files.items()} == mtimes
    # an interrupted build (one shard missing) redoes only that shard, identically
    files["train_16_0"].unlink()
    build_dataset(MICRO, out=a, seed=5)
    assert files["test_4_0"].stat().st_mtime_ns == mtimes["test_4_0"]
    with Dataset(a) as ds2:
        np.testing.assert_array_equal(ds2.split("train").read("flux"), train_flux)
    # same seed elsewhere → identical; another seed → different
    b = build_dataset(MICRO, out=tmp_path / "b", seed=5, crlb=False)
    c = build_dataset(MICRO, out=tmp_path / "c", seed=6, crlb=False)
    with Dataset(b) as db, Dataset(c) as dc:
        np.testing.assert_array_equal(db.split("train").read("flux"), train_flux)
        assert not np.array_equal(dc.split("train").read("flux"), train_flux)
    # a different build in the same folder is refused
    with pytest.raises(SpecError):
        build_dataset(MICRO, out=a, seed=6)


def test_snapping_preset_writes_interp_param(tmp_path):
    snap = Preset("snap", (ShardSpec("train_12_0", 12),
                           ShardSpec("test_4_0", 4, noisy=True)), snap=True)
    with Dataset(build_dataset(snap, out=tmp_path / "s", seed=1, crlb=False)) as ds:
        p = ds.split("train").params
        assert set(p["interp_param"]) <= {"T_eff", "log_g", "M_H", "a_M", "C_M"}
        free_not_teff = p["interp_param"] != "T_eff"
        assert np.allclose(p.loc[free_not_teff, "T_eff"] % 250, 0)


def test_presets_and_size_override():
    d = get_preset("default")
    assert d.train_rows >= 20000 and any(s.crlb for s in d.shards if s.role == "test")
    big = get_preset("bosz-1m")
    assert [s.name for s in big.shards] == [f"train_200k_{i}" for i in range(5)] + \
        ["val_6k", "test_1k_0", "test_10k"]
    assert not big.shards[5].crlb and big.shards[5].rows == 6000  # the gates' ~5,800 rows
    assert big.snap
    p = with_train_size(d, 25000)
    assert [s.name for s in p.shards if s.role == "train"] == ["train_8334_0", "train_8333_1",
                                                              "train_8333_2"]
    assert sum(s.rows for s in p.shards if s.role == "train") == 25000
    with pytest.raises(SpecError):
        get_preset("huge")
    with pytest.raises(SpecError):
        with_train_size(d, 0)


def test_cli_bad_options_exit_2(tmp_path):
    import torch
    bad = [["--preset", "nope"], ["--size", "12q"], ["--compile", "maybe"], ["--device", "gpu"]]
    if not torch.cuda.is_available():           # a GPU asked for and missing: no work at all
        bad.append(["--device", "cuda"])
    for args in bad:
        exe = str(Path(sys.executable).with_name("logg-engine"))
        r = subprocess.run([exe, "data", "generate", *args,
                            "--out", str(tmp_path / "x")], capture_output=True, text=True)
        assert r.returncode == 2, r.stderr
        assert "fix:" in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "x").exists()


@pytest.mark.slow
def test_cli_generate_tiny_end_to_end(tmp_path):
    exe = str(Path(sys.executable).with_name("logg-engine"))
    out = tmp_path / "t"
    r = subprocess.run([exe, "data", "generate", "--preset", "tiny", "--size", "64",
                        "--no-crlb", "--out", str(out), "--seed", "3"],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    man = json.loads((out / "dataset.json").read_text())
    assert man["shards"] == {"train_64_0": 64, "val_100": 100, "test_200_0": 200}
    assert man["complete"] and man["seed"] == 3
