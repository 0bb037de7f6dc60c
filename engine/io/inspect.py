"""What `logg-engine data inspect` reports about a pfsspec file or a dataset folder:
structure (shapes, dtypes, chunking, filters), parameter ranges, NaN columns, SNR from a
sample of rows (all three estimators, plus how the stored `snr` compares with the
q95 recipe in docs/data-format.md), NaN-filled error pixels and the validation result.
Returns plain JSON-ready dicts; the CLI renders them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from engine.errors import DataError
from engine.events import Callbacks, emit
from engine.io.dataset import SHARD_FILE, Dataset
from engine.io.pfsspec import DEFAULT_CHUNK_ROWS, SpectrumFile
from engine.io.snr import snr_l2, snr_median, snr_pfsspec

RANGE_COLUMNS = ("T_eff", "log_g", "M_H", "a_M", "C_M", "mag", "snr", "snr_median",
                 "snr_l2", "crlb_log_g")


def inspect_path(path: str | Path, *, sample_rows: int = 1000, validate: bool = True,
                 callbacks: Callbacks | None = None) -> dict[str, Any]:
    """Report on a `dataset.h5` file or a dataset folder. Raises DataError only when the
    thing cannot be opened at all; value problems go into report['validation']."""
    p = Path(path).expanduser()
    if p.is_dir():
        if (p / SHARD_FILE).is_file() and not any(p.glob(f"*/{SHARD_FILE}")):
            return inspect_file(p / SHARD_FILE, sample_rows=sample_rows, validate=validate,
                                callbacks=callbacks)
        return inspect_dataset(p, sample_rows=sample_rows, validate=validate,
                               callbacks=callbacks)
    return inspect_file(p, sample_rows=sample_rows, validate=validate, callbacks=callbacks)


def inspect_dataset(root: Path, *, sample_rows: int, validate: bool,
                    callbacks: Callbacks | None = None) -> dict[str, Any]:
    with Dataset(root) as ds:
        aliases = {}
        for role in ("train", "val", "test"):
            try:
                aliases[role] = ds.alias(role)
            except DataError:  # no such shard, or the test shards do not open
                aliases[role] = [s for s in ds.shards if s.startswith(f"{role}_")][:1] \
                    if role != "train" else []
        shards = {s: _inspect_shard(ds.root / s / SHARD_FILE, sample_rows, validate,
                                    callbacks) for s in ds.shards}
        ok = all(r["validation"]["ok"] is not False for r in shards.values())
        try:
            fingerprint: str | None = ds.fingerprint()
        except DataError:
            fingerprint = None  # a shard does not open; reported per shard
        return {"kind": "dataset", "path": str(ds.root), "name": ds.name,
                "manifest": ds.manifest, "noise_level": ds.noise_level,
                "fingerprint": fingerprint, "aliases": aliases,
                "rows": {s: r.get("n_rows") for s, r in shards.items()},
                "train_rows": sum(shards[s].get("n_rows") or 0 for s in aliases["train"]),
                "shards": shards, "validation": {"ok": ok}}


def _inspect_shard(path: Path, sample_rows: int, validate: bool,
                   callbacks: Callbacks | None) -> dict[str, Any]:
    """One shard's report; a shard that does not even open is reported, not fatal."""
    try:
        return inspect_file(path, sample_rows=sample_rows, validate=validate,
                            callbacks=callbacks)
    except DataError as exc:
        return {"kind": "file", "path": str(path), "n_rows": None,
                "validation": {"ok": False, "error": exc.render()}}


def inspect_file(path: Path, *, sample_rows: int = 1000, validate: bool = True,
                 callbacks: Callbacks | None = None) -> dict[str, Any]:
    with SpectrumFile(path) as sf:
        report: dict[str, Any] = {"kind": "file", "path": str(sf.path),
                                  "size_bytes": sf.path.stat().st_size,
                                  "n_rows": sf.n_rows, "n_pixels": sf.n_pixels}
        report["arrays"] = {n: _array_info(sf, n) for n in sf.array_names}
        wave = sf.wave
        edges = sf.wave_edges
        report["wave"] = {"min": float(wave.min()), "max": float(wave.max()),
                          "edges_shape": None if edges is None else list(edges.shape)}
        try:
            params = sf.params
        except DataError as exc:
            report["params"] = None
            report["validation"] = {"ok": False, "error": exc.render()}
            return report
        report["params"] = _params_info(params)
        try:
            report["sample"] = _sample_info(sf, min(sample_rows, sf.n_rows))
            if validate:
                report["nan_filled_error"] = _full_pass(sf, callbacks)
            else:
                report["nan_filled_error"] = sf.nan_filled
            report["validation"] = {"ok": True if validate else None,
                                    "full_pass": validate}
        except DataError as exc:
            report["nan_filled_error"] = sf.nan_filled
            report["validation"] = {"ok": False, "error": exc.render()}
        return report


def _full_pass(sf: SpectrumFile, callbacks: Callbacks | None) -> dict[str, int]:
    emit(callbacks, "start", total=sf.n_rows, unit="rows", what=f"validate {sf.path.parent.name}")
    for _s, e, _b in sf.iter_rows(sf.array_names, DEFAULT_CHUNK_ROWS):
        emit(callbacks, "progress", done=e, total=sf.n_rows)
    return sf.nan_filled


def _array_info(sf: SpectrumFile, name: str) -> dict[str, Any]:
    ds = sf.dataset(name)
    return {"shape": list(ds.shape), "dtype": str(ds.dtype),
            "chunks": None if ds.chunks is None else list(ds.chunks),
            "compression": ds.compression, "nbytes": int(ds.size * ds.dtype.itemsize)}


def _params_info(df: pd.DataFrame) -> dict[str, Any]:
    ranges = {}
    for col in RANGE_COLUMNS:
        if col in df.columns:
            v = pd.to_numeric(df[col], errors="coerce").to_numpy(np.float64)
            fin = v[np.isfinite(v)]
            ranges[col] = {"min": _f(fin.min()) if fin.size else None,
                           "median": _f(np.median(fin)) if fin.size else None,
                           "max": _f(fin.max()) if fin.size else None,
                           "n_nan": int((~np.isfinite(v)).sum())}
    isna = df.isna()
    all_nan = [c for c in df.columns if bool(isna[c].all())]
    some_nan = {c: int(isna[c].sum()) for c in df.columns
                if isna[c].any() and c not in all_nan}
    return {"n_columns": int(df.shape[1]), "columns": list(map(str, df.columns)),
            "dtypes": {str(c): str(t) for c, t in df.dtypes.items()},
            "ranges": ranges, "all_nan_columns": all_nan, "nan_counts": some_nan}


def _sample_info(sf: SpectrumFile, n: int) -> dict[str, Any]:
    """SNR from the first n rows (rows are independent draws, so the head is a fair sample)."""
    flux = sf.read("flux", 0, n)
    out: dict[str, Any] = {"rows": n, "flux_row_median": _stats(np.median(flux, axis=1))}
    if sf.has("error"):
        err = sf.read("error", 0, n)
        mask = sf.read("mask", 0, n) if sf.has("mask") else None
        q95 = snr_pfsspec(flux, err, mask)
        out["snr_q95"] = _stats(q95)
        out["snr_median"] = _stats(snr_median(flux, err, mask))
        out["snr_l2"] = _stats(snr_l2(flux, err))
        stored = sf.params["snr"].to_numpy(np.float64)[:n] if "snr" in sf.params else None
        if stored is not None and np.isfinite(stored).any():
            ratio = stored / q95
            out["stored_snr_over_q95"] = _stats(ratio)
        if mask is not None:
            out["mask_nonzero_fraction"] = float((mask != 0).mean())
    return out


def _stats(v: np.ndarray) -> dict[str, float | None]:
    fin = np.asarray(v, dtype=np.float64)
    fin = fin[np.isfinite(fin)]
    if not fin.size:
        return {"min": None, "median": None, "max": None, "mean": None}
    return {"min": _f(fin.min()), "median": _f(np.median(fin)), "max": _f(fin.max()),
            "mean": _f(fin.mean())}


def _f(x: Any) -> float:
    return round(float(x), 6)
