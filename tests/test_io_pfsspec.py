"""Writer and reader of the pfsspec layout, on real HDF5 files."""

from __future__ import annotations

import h5py
import numpy as np
import pandas as pd
import pytest

from engine.errors import DataError
from engine.io.columns import LOGG_COLUMNS, PFSSPEC_COLUMN_NAMES, empty_params
from engine.io.pfsspec import SpectrumFile, SpectrumWriter, chunk_shape, write_spectra


def _arrays(n=50, w=4096, seed=0):
    rng = np.random.default_rng(seed)
    wave = np.linspace(7100.2, 8849.8, w)
    flux = 0.5 + 0.1 * rng.standard_normal((n, w))
    error = 0.02 + 0.05 * rng.random((n, w))
    params = empty_params(n)
    params["log_g"] = rng.uniform(1, 5, n)
    params["T_eff"] = rng.uniform(3750, 6000, n)
    params["snr"] = rng.uniform(3, 30, n)
    params["interp_param"] = rng.choice(["T_eff", "log_g", ""], n)
    params["crlb_log_g"] = rng.random(n)
    return wave, flux, error, params


def _nodes(path):
    out = []
    with h5py.File(path, "r") as f:
        f.visit(out.append)
    return {n for n in out if not n.startswith("dataset/params/")}


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_round_trip(tmp_path, dtype):
    wave, flux, error, params = _arrays()
    noisy = flux + error
    path = write_spectra(tmp_path / "dataset.h5", wave=wave, flux=flux, error=error,
                         params=params, noisy=noisy, dtype=dtype)
    with h5py.File(path, "r") as f:
        assert f["dataset/arrays/flux/value"].dtype == np.dtype(dtype)
        assert f["dataset/arrays/noisy/value"].dtype == np.dtype(dtype)
        assert f["dataset/arrays/mask/value"].dtype == np.int64
        assert f["spectrumdataset/wave"].dtype == np.float64
        assert f["spectrumdataset/wave_edges"].shape == (4097,)
    with SpectrumFile(path) as sf:
        assert (sf.n_rows, sf.n_pixels) == (50, 4096)
        assert sf.array_names == ("error", "flux", "mask", "noisy")
        np.testing.assert_array_equal(sf.wave, wave)
        for name, ref in (("flux", flux), ("error", error), ("noisy", noisy)):
            got = sf.read(name)
            assert got.dtype == np.float32
            np.testing.assert_array_equal(got, ref.astype(dtype).astype(np.float32))
        np.testing.assert_array_equal(sf.read("mask"), np.zeros((50, 4096), np.int64))
        np.testing.assert_array_equal(sf.read("flux", 10, 13), flux[10:13].astype(np.float32)
                                      if dtype == "float32" else
                                      flux[10:13].astype(np.float32))
        got = sf.params
        assert list(got.columns) == list(PFSSPEC_COLUMN_NAMES) + list(LOGG_COLUMNS)
        pd.testing.assert_series_equal(got["log_g"], params["log_g"].reset_index(drop=True))
        assert list(got["interp_param"]) == list(params["interp_param"])
        assert sf.nan_filled == {"edge": 0, "interior": 0, "rows_checked": 50}


def test_research_loader_compatibility(tmp_path):
    """pd.read_hdf(path) with no key works (VIT loader) and the h5py keys are exact."""
    wave, flux, error, params = _arrays(n=20, w=256)
    path = write_spectra(tmp_path / "dataset.h5", wave=wave, flux=flux, error=error,
                         params=params, noisy=flux)
    df = pd.read_hdf(path)  # the research's own call
    assert list(df.index) == list(range(20))
    with SpectrumFile(path) as sf:
        pd.testing.assert_frame_equal(df.reset_index(drop=True), sf.params)
    assert _nodes(path) == {
        "dataset", "dataset/arrays", "dataset/params", "spectrumdataset",
        "spectrumdataset/wave", "spectrumdataset/wave_edges",
        *(f"dataset/arrays/{n}" for n in ("flux", "error", "mask", "noisy")),
        *(f"dataset/arrays/{n}/value" for n in ("flux", "error", "mask", "noisy"))}
    with h5py.File(path, "r") as f:
        assert f["dataset/params"].attrs["pandas_type"] == b"frame_table" or \
            f["dataset/params"].attrs["pandas_type"] == "frame_table"
        # VIT reads rows with a bare h5py slice
        np.testing.assert_array_equal(f["dataset/arrays/flux/value"][:5],
                                      flux[:5].astype(np.float32))


def test_chunk_rule_matches_pfsspec():
    assert chunk_shape((256, 4096)) is None
    assert chunk_shape((257, 4096)) == (64, 4096)
    assert chunk_shape((1024, 4096)) == (64, 4096)
    assert chunk_shape((1025, 4096)) == (1025, 4096)
    assert chunk_shape((65536, 4096)) == (65536, 4096)
    assert chunk_shape((200_000, 4096)) == (4096, 4096)
    assert chunk_shape((4096,)) is None


def test_writer_is_atomic(tmp_path):
    wave, flux, error, params = _arrays(n=5, w=64)
    path = tmp_path / "dataset.h5"
    with pytest.raises(RuntimeError):
        with SpectrumWriter(path, n_rows=5, wave=wave) as w:
            w.write_rows(0, flux=flux, error=error)
            raise RuntimeError("killed")
    assert list(tmp_path.iterdir()) == []
    with SpectrumWriter(path, n_rows=5, wave=wave, dtype="float64") as w:
        w.write_rows(0, flux=flux[:3], error=error[:3])
        w.write_rows(3, flux=flux[3:], error=error[3:])
        w.set_params(params)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dataset.h5"]
    with SpectrumFile(path) as sf:
        np.testing.assert_array_equal(sf.read("flux"), flux.astype(np.float32))


def _pfsspec_style(path, *, n=300, w=4096, mask_dtype=np.int64, compression=None,
                   edges="w+1", params_format="table", dtype=np.float64, extra=True):
    """A file written the way pfsspec does it: h5py arrays + pandas table, float64,
    int64 mask, 35 columns with NaN columns, NaN at the first/last error pixel."""
    rng = np.random.default_rng(1)
    wave = np.linspace(7100.2, 8849.8, w)
    flux = 0.5 + 0.05 * rng.standard_normal((n, w))
    error = 0.03 + 0.01 * rng.random((n, w))
    error[:, 0] = np.nan
    error[:, -1] = np.nan
    error[7, 100:103] = np.nan  # interior run
    mask = np.zeros((n, w), dtype=mask_dtype)
    mask[3, 50] = 1
    error[3, 50] = 0.0  # masked pixel with zero error is fine
    with h5py.File(path, "w") as f:
        kw = {"chunks": chunk_shape((n, w))} if compression is None else \
            {"chunks": (64, w), "compression": compression}
        for name, arr in (("flux", flux.astype(dtype)), ("error", error.astype(dtype)),
                          ("mask", mask)):
            f.create_dataset(f"dataset/arrays/{name}/value", data=arr, **kw)
        if extra:
            f.create_dataset("dataset/arrays/cont/value", data=np.ones((n, w)))
        f.create_dataset("spectrumdataset/wave", data=wave)
        if edges == "w+1":
            f.create_dataset("spectrumdataset/wave_edges", data=np.linspace(7100, 8850, w + 1))
        elif edges == "2xw":
            f.create_dataset("spectrumdataset/wave_edges", data=np.stack([wave - .2, wave + .2]))
        elif edges == "copy":
            f.create_dataset("spectrumdataset/wave_edges", data=wave)
    cols = {c: np.full(n, np.nan) for c in PFSSPEC_COLUMN_NAMES}
    cols["id"] = np.arange(n)
    cols["exp_count"] = np.full(n, 12)
    cols["log_g"] = rng.uniform(1, 5, n)
    cols["T_eff"] = rng.uniform(3750, 6000, n)
    cols["interp_param"] = rng.choice(["T_eff", "M_H"], n).astype(object)
    df = pd.DataFrame(cols, index=cols["id"]).sort_index()
    df.to_hdf(path, key="dataset/params", mode="a", format=params_format)
    return flux, error, mask, df


def test_reads_pfsspec_style_file(tmp_path):
    path = tmp_path / "dataset.h5"
    flux, error, _mask, df = _pfsspec_style(path)
    with SpectrumFile(path) as sf:
        assert sf.dataset("flux").chunks == (64, 4096)
        assert sf.array_names == ("cont", "error", "flux", "mask")
        assert sf.wave_edges.shape == (4097,)
        err = sf.read("error")
        # edges filled from the neighbour (VIT rule), interior run from the nearest valid
        np.testing.assert_array_equal(err[:, 0], error[:, 1].astype(np.float32))
        np.testing.assert_array_equal(err[:, -1], error[:, -2].astype(np.float32))
        np.testing.assert_array_equal(err[7, 100:103], np.float32(
            [error[7, 99], error[7, 99], error[7, 103]]))
        assert sf.nan_filled == {"edge": 600, "interior": 3, "rows_checked": 300}
        sf.read("error", 0, 10)  # re-reading does not double count
        assert sf.nan_filled["edge"] == 600
        np.testing.assert_array_equal(sf.read("flux", 290, 300), flux[290:].astype(np.float32))
        p = sf.params
        assert p.shape == (300, 35)
        assert p["ext"].isna().all() and p["interp_param"].iloc[0] in ("T_eff", "M_H")
        np.testing.assert_array_equal(p["log_g"], df["log_g"])


@pytest.mark.parametrize("variant", [
    {"mask_dtype": np.int32, "edges": "2xw", "params_format": "fixed"},
    {"compression": "gzip", "edges": None, "dtype": np.float32},
    {"compression": "lzf", "edges": "copy", "extra": False},
])
def test_reader_tolerances(tmp_path, variant):
    path = tmp_path / "dataset.h5"
    flux, error, mask, df = _pfsspec_style(path, n=100, w=512, **variant)
    with SpectrumFile(path) as sf:
        stats = sf.validate()
        assert stats == {"edge": 200, "interior": 3, "rows_checked": 100}
        np.testing.assert_array_equal(sf.read("mask"), mask.astype(np.int64))
        blocks = [b["flux"] for _s, _e, b in sf.iter_rows(["flux"], chunk_rows=30)]
        np.testing.assert_array_equal(np.concatenate(blocks), flux.astype(np.float32))
        assert list(sf.params["interp_param"]) == list(df["interp_param"])


def _nearest_fill_oracle(row):
    """Brute force: each NaN takes the value of the nearest non-NaN pixel (ties → left)."""
    out = row.copy()
    valid = np.flatnonzero(~np.isnan(row))
    for j in np.flatnonzero(np.isnan(row)):
        d = np.abs(valid - j)
        out[j] = row[valid[np.argmin(d)]]  # argmin picks the first = left on ties
    return out


def test_fill_nan_errors_matches_nearest_valid_oracle():
    from engine.io.validate import fill_nan_errors

    rng = np.random.default_rng(5)
    err = (0.1 + rng.random((30, 40))).astype(np.float32)
    err[rng.random((30, 40)) < 0.2] = np.nan
    err[3, :2] = np.nan   # both first pixels
    err[4, -3:] = np.nan  # last three
    err[6] = np.nan       # whole row: left alone (reported as unwritten by the checks)
    want = np.array([_nearest_fill_oracle(r) if not np.isnan(r).all() else r for r in err])
    n_nan = np.isnan(err[np.arange(30) != 6]).sum()
    got = err.copy()
    edge, interior = fill_nan_errors(got)
    np.testing.assert_array_equal(got, want)
    assert edge + interior == n_nan
    assert edge == int(np.isnan(err[np.arange(30) != 6][:, [0, -1]]).sum())


def test_nan_fill_counted_once_per_row_with_overlapping_reads(tmp_path):
    path = tmp_path / "dataset.h5"
    _pfsspec_style(path, n=40, w=128, extra=False)
    with SpectrumFile(path) as sf:
        sf.read("error", 0, 10)
        sf.read("error", 5, 20)
        sf.read("error", 3, 8)
        assert sf.nan_filled == {"edge": 40, "interior": 3, "rows_checked": 20}


def test_missing_filter_is_named(tmp_path):
    path = tmp_path / "dataset.h5"
    _pfsspec_style(path, n=10, w=64, extra=False)
    with h5py.File(path, "a") as f:
        del f["dataset/arrays/error"]
        ds = f.create_dataset("dataset/arrays/error/value", shape=(10, 64), dtype="f4",
                              chunks=(10, 64), compression=32999, allow_unknown_filter=True)
        ds.id.write_direct_chunk((0, 0), b"compressed bytes")
    with pytest.raises(DataError) as info:
        SpectrumFile(path)
    msg = str(info.value)
    assert "32999" in msg and "hdf5plugin" in msg and "[dataset/arrays/error/value]" in msg


def test_writer_params_normalisation(tmp_path):
    wave, flux, error, _ = _arrays(n=4, w=8)
    user = pd.DataFrame({"log_g": [1.0, 2.0, 3.0, 4.0], "my_note": ["a", "b", "c", "d"],
                         "exp_count": [12, 12, 12, 12], "id": [9, 9, 9, 9]},
                        index=[10, 11, 12, 13])
    path = write_spectra(tmp_path / "dataset.h5", wave=wave, flux=flux, error=error,
                         params=user)
    df = pd.read_hdf(path)
    assert list(df.columns)[:35] == list(PFSSPEC_COLUMN_NAMES)
    assert list(df.columns)[35:] == [*LOGG_COLUMNS, "my_note"]
    assert list(df.index) == [0, 1, 2, 3] and list(df["id"]) == [0, 1, 2, 3]
    assert df["exp_count"].dtype == np.int64 and list(df["my_note"]) == ["a", "b", "c", "d"]
    assert df["T_eff"].isna().all() and list(df["interp_param"]) == [""] * 4
    with pytest.raises(DataError) as info:
        write_spectra(tmp_path / "b" / "dataset.h5", wave=wave, flux=flux, error=error,
                      params=user.iloc[:3])
    assert "3 rows" in str(info.value) and not (tmp_path / "b" / "dataset.h5").exists()
    assert not list((tmp_path / "b").glob("*.tmp"))


def test_per_row_wave_is_refused(tmp_path):
    path = tmp_path / "dataset.h5"
    _pfsspec_style(path, n=10, w=64, extra=False)
    with h5py.File(path, "a") as f:
        f.create_dataset("dataset/arrays/wave/value", data=np.ones((10, 64)))
    with pytest.raises(DataError, match="per-row wave"):
        SpectrumFile(path)
