"""Datasets of shards, size selection, splits and frozen / seeded noise."""

from __future__ import annotations

import json

import numpy as np
import pytest

from engine.errors import DataError, SpecError
from engine.io.columns import empty_params
from engine.io.dataset import Dataset, parse_size, resolve_dataset, write_manifest
from engine.io.seeded_noise import BLOCK_ROWS
from engine.io.pfsspec import write_spectra

W = 16


def _shard(root, name, n, *, seed, noisy=False, first_id=0):
    rng = np.random.default_rng(seed)
    flux = 0.5 + 0.1 * rng.random((n, W))
    error = 0.01 + 0.1 * rng.random((n, W))
    p = empty_params(n)
    p["log_g"] = (first_id + np.arange(n)) / 1000.0  # encodes the global row for checks
    write_spectra(root / name / "dataset.h5", wave=np.arange(W) + 7100.0, flux=flux,
                  error=error, params=p,
                  noisy=flux + error * rng.standard_normal((n, W)) if noisy else None)
    return flux, error


@pytest.fixture()
def ds_root(tmp_path):
    """A '500k-like' dataset scaled down: 5 train shards of 200 rows (= '200k')."""
    root = tmp_path / "datasets" / "mini"
    for i in range(5):
        _shard(root, f"train_200_{i}", 200, seed=i, first_id=200 * i)
    _shard(root, "val_50", 50, seed=10, noisy=True)
    _shard(root, "test_1k_0", 30, seed=11, noisy=True)
    _shard(root, "test_10k", 40, seed=12, noisy=True)
    write_manifest(root, name="mini", preset="tiny", seed=7, noise_level=1.0,
                   shards={"train_200_0": 200})
    return root


@pytest.mark.parametrize("text,n", [("50k", 50_000), ("1M", 1_000_000), ("1m", 1_000_000),
                                    ("2000", 2000), ("1.5k", 1500), (" 200K ", 200_000),
                                    (300, 300)])
def test_parse_size(text, n):
    assert parse_size(text) == n


@pytest.mark.parametrize("text", ["", "abc", "1.2345k", "-5", "0", "1g", "5 k rows", "1e3"])
def test_parse_size_rejects(text):
    with pytest.raises(SpecError) as info:
        parse_size(text)
    assert "50k" in str(info.value) and info.value.exit_code == 2


def test_aliases_and_train_selection_across_shards(ds_root):
    with Dataset(ds_root) as ds:
        assert ds.name == "mini"
        assert ds.alias("train") == [f"train_200_{i}" for i in range(5)]
        assert ds.split("val").shards == ["val_50"]
        assert ds.split("test").shards == ["test_10k"]
        t = ds.train("500")  # = shards 0+1 + first 100 of shard 2
        assert t.n_rows == 500
        assert [(s.shard, s.start, s.stop) for s in t.segments] == [
            ("train_200_0", 0, 200), ("train_200_1", 0, 200), ("train_200_2", 0, 100)]
        np.testing.assert_allclose(t.log_g, np.arange(500) / 1000.0)
        assert list(t.params.index) == list(range(500))
        flux = t.read("flux", 190, 410)  # crosses two shard borders
        f0 = ds.file("train_200_0").read("flux", 190, 200)
        f2 = ds.file("train_200_2").read("flux", 0, 10)
        np.testing.assert_array_equal(flux[:10], f0)
        np.testing.assert_array_equal(flux[-10:], f2)
        chunks = list(t.iter_chunks(["flux", "error"], chunk_rows=128))
        assert [(s, e) for s, e, _ in chunks] == [(0, 128), (128, 256), (256, 384),
                                                  (384, 500)]
        np.testing.assert_array_equal(np.concatenate([b["flux"] for *_, b in chunks]),
                                      t.read("flux"))
        assert ds.train().n_rows == 1000
        with pytest.raises(DataError) as info:
            ds.train("1001")
        assert "1000" in str(info.value)


def test_test_alias_falls_back_to_largest(tmp_path):
    root = tmp_path / "d"
    _shard(root, "train_10_0", 10, seed=0)
    _shard(root, "test_1k_0", 30, seed=1)
    _shard(root, "test_1k_1", 20, seed=2)
    assert Dataset(root).split("test").shards == ["test_1k_0"]


def test_noisy_chunks_independent_of_chunk_size(ds_root):
    with Dataset(ds_root) as ds:
        t = ds.train("700")
        runs = {}
        for chunk in (1, 97, 256, 5000):
            parts = list(t.noisy_chunks(noise_level=0.7, seed=3, chunk_rows=chunk))
            runs[chunk] = np.concatenate([x for _s, _e, x, _y in parts])
            np.testing.assert_array_equal(np.concatenate([y for *_, y in parts]), t.log_g)
        for chunk in (97, 256, 5000):
            np.testing.assert_array_equal(runs[1], runs[chunk])
        # the noise is flux + eps*error*level, eps ~ N(0,1)
        eps = (runs[256] - t.read("flux")) / (t.read("error") * np.float32(0.7))
        assert abs(eps.mean()) < 0.02 and abs(eps.std() - 1) < 0.02
        # a smaller training set sees exactly the noise the same rows get in the bigger
        small = np.concatenate([x for *_, x, _ in ds.train("300").noisy_chunks(0.7, 3, 64)])
        np.testing.assert_array_equal(small, runs[1][:300])
        other = np.concatenate([x for *_, x, _ in t.noisy_chunks(0.7, 4, 256)])
        assert not np.allclose(other, runs[1])


def test_noisy_stored_and_cached(ds_root):
    with Dataset(ds_root) as ds:
        test = ds.split("test")
        stored = test.noisy()  # seed None + stored level → the file's array
        np.testing.assert_array_equal(stored, ds.file("test_10k").read("noisy"))
        assert test.uses_stored_noisy(1.0, None)
        assert not (ds_root / ".cache").exists()  # nothing generated for the stored case
        a = test.noisy(0.5, seed=1)
        path = test.noisy_cache_path(0.5, 1)
        assert path.exists() and path.parent == ds_root / ".cache"
        b = test.noisy(0.5, seed=1)
        np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(np.load(path), a)
        c = test.noisy(0.5, seed=2)
        assert not np.allclose(a, c)
        # same realisation as noisy_chunks with that seed
        chunks = np.concatenate([x for *_, x, _ in test.noisy_chunks(0.5, 1, 7)])
        np.testing.assert_array_equal(a, chunks)
        # seed given → a seeded realisation even at the stored level
        d = test.noisy(1.0, seed=9)
        assert not np.allclose(d, stored)
        # train split has no stored noisy: frozen default-seed realisation
        e = ds.train("300").noisy(1.0)
        np.testing.assert_array_equal(e, ds.train("300").noisy(1.0, seed=42))
    # noise_level ≠ stored level in the manifest → not the stored array
    doc = json.loads((ds_root / "dataset.json").read_text())
    doc["noise_level"] = 2.0
    (ds_root / "dataset.json").write_text(json.dumps(doc))
    with Dataset(ds_root) as ds:
        assert not ds.split("test").uses_stored_noisy(1.0, None)
        assert ds.split("test").uses_stored_noisy(2.0, None)


def test_row_range_is_the_parents_rows_with_the_parents_noise(ds_root):
    """Split.rows (the validation's selection / calibration parts): same flux, params,
    stored and seeded noise as the parent's rows, across a shard border and a noise block;
    its name resolves back to it."""
    with Dataset(ds_root) as ds:
        t = ds.train("1000")
        sub = t.rows(150, 930)                  # crosses 4 shard borders
        assert sub.n_rows == 780 and sub.name == "train@150-930"
        np.testing.assert_array_equal(sub.read("flux"), t.read("flux", 150, 930))
        np.testing.assert_array_equal(sub.log_g, t.log_g[150:930])
        np.testing.assert_array_equal(sub.noisy(0.7, seed=3), t.noisy(0.7, seed=3)[150:930])
        again = ds.split(sub.name)
        np.testing.assert_array_equal(again.read("error"), sub.read("error"))
        np.testing.assert_array_equal(sub.rows(10, 20).log_g, t.log_g[160:170])
        test = ds.split("test")
        np.testing.assert_array_equal(test.rows(5, 25).noisy(), test.noisy()[5:25])
        with pytest.raises(DataError, match="empty"):
            t.rows(50, 50)


def test_block_size_is_what_noise_module_says():
    assert BLOCK_ROWS == 1024


def test_fingerprint_stable_and_sensitive(ds_root, tmp_path):
    fp = Dataset(ds_root).fingerprint()
    assert fp == Dataset(ds_root).fingerprint() and len(fp) == 16
    # same content rebuilt elsewhere → same fingerprint
    copy = tmp_path / "copy"
    import shutil
    shutil.copytree(ds_root, copy)
    assert Dataset(copy).fingerprint() == fp
    # a changed params value changes it
    import pandas as pd
    import h5py
    path = copy / "val_50" / "dataset.h5"
    df = pd.read_hdf(path, key="dataset/params")
    df.loc[3, "log_g"] = 9.0
    with h5py.File(path, "a") as h:
        del h["dataset/params"]
    df.to_hdf(path, key="dataset/params", format="table", mode="a")
    assert Dataset(copy).fingerprint() != fp


def test_resolve_dataset(ds_root, tmp_path):
    ws = ds_root.parent.parent
    assert resolve_dataset("mini", ws).root == ds_root
    assert resolve_dataset(str(ds_root), tmp_path / "elsewhere").root == ds_root
    with pytest.raises(DataError) as info:
        resolve_dataset("nope", ws)
    msg = str(info.value)
    assert "mini" in msg and "logg-engine data generate --preset default" in msg
    with pytest.raises(DataError):
        Dataset(tmp_path / "empty_dir_does_not_exist")


def test_shards_with_different_wave_grids_are_refused(tmp_path):
    root = tmp_path / "d"
    _shard(root, "train_10_0", 10, seed=0)
    p = empty_params(10)
    p["log_g"] = 1.0
    write_spectra(root / "train_10_1" / "dataset.h5", wave=np.arange(W) + 7200.0,
                  flux=np.ones((10, W)), error=np.ones((10, W)), params=p)
    with pytest.raises(DataError) as info:
        Dataset(root).train()
    assert "train_10_1" in str(info.value) and "[spectrumdataset/wave]" in str(info.value)
