"""`logg-engine ceiling`: the dataset's CRLB ceiling per SNR / magnitude bin with every
finished run's R² beside it, or grid-Fisher CRLBs of a pfsspec regular-grid file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from engine.analysis import ceiling as C
from engine.analysis.split_reads import split_meta
from engine.analysis.record import AnalysisResult
from engine.errors import DataError, StoreError
from engine.eval.r2max import label_variance


def run_ceiling(ws: Path, *, dataset: str = "default", runs: list[str] | None = None,
                var: float | None = None) -> AnalysisResult:
    from engine.io.dataset import resolve_dataset

    ds = resolve_dataset(dataset, ws)
    test = ds.split("test")
    meta = split_meta(test, ds.noise_level)
    if not np.isfinite(meta["crlb_log_g"]).any():
        raise DataError("the test split has no per-spectrum CRLBs (params column "
                        "crlb_log_g)", path=ds.root, key="crlb_log_g",
                        hint="use a dataset built by `logg-engine data generate`, or pass "
                        "--grid PATH for a pfsspec regular-grid file")
    v = label_variance(meta["log_g"].to_numpy()) if var is None else float(var)
    recs = C.dataset_records(meta, v)
    chosen = _runs(ws, ds.fingerprint(), runs)
    for run_id, model in chosen:
        recs += C.run_records(run_id, model, _predictions(ws, run_id, meta), v)
    params = {"dataset": ds.name, "dataset_fingerprint": ds.fingerprint(),
              "test_split": test.name, "var": v, "runs": [r for r, _ in chosen]}
    head = recs[0]
    summary = {k: head.get(k) for k in ("n", "r2_max_pop", "r2_max_median", "r2_max_bayes",
                                        "sigma_p50")}
    return AnalysisResult("ceiling", params, recs, summary=summary)


def _runs(ws: Path, fingerprint: str, runs: list[str] | None) -> list[tuple[str, str]]:
    """(run_id, model) of the given runs, or of every finished run on the dataset."""
    from engine.store.reader import query_df, store_exists

    if not store_exists(ws):
        if runs:
            raise StoreError("no results store yet, so no runs to compare",
                             hint="run a model first, e.g. `logg-engine run ridge`")
        return []
    if runs:
        df = query_df(ws, "SELECT run_id, model FROM runs WHERE list_contains(?, run_id)",
                      [runs])
        missing = sorted(set(runs) - set(df["run_id"]))
        if missing:
            raise StoreError(f"unknown run(s): {', '.join(missing)}", key="runs",
                             hint="see `logg-engine runs ls`")
    else:
        df = query_df(ws, "SELECT run_id, model FROM runs WHERE status = 'finished' AND "
                      "dataset_fingerprint = ? ORDER BY run_id", [fingerprint])
    return list(df.itertuples(index=False, name=None))


def _predictions(ws: Path, run_id: str, meta: pd.DataFrame) -> pd.DataFrame:
    """The run's stored predictions; snr / mag / crlb_log_g missing there are taken from
    the test split by row index."""
    from engine.store.reader import query_df

    p = query_df(ws, "SELECT idx, y_true, y_pred, snr, mag, crlb_log_g FROM predictions "
                 "WHERE run_id = ? ORDER BY idx", [run_id])
    idx = p["idx"].to_numpy(np.int64)
    inside = (idx >= 0) & (idx < len(meta))
    for col in ("snr", "mag", "crlb_log_g"):
        v = p[col].to_numpy(np.float64, na_value=np.nan)
        fill = np.full(len(p), np.nan)
        fill[inside] = meta[col].to_numpy(np.float64)[idx[inside]]
        p[col] = np.where(np.isfinite(v), v, fill)
    return p


def run_grid_ceiling(ws: Path, grid: Path, *, noise_level: float = 1.0,
                     var: float | None = None, edge: str = "one-sided") -> AnalysisResult:
    from engine.io.pfsspec import SpectrumFile

    with SpectrumFile(grid) as f:
        params, flux, error = f.params, f.read("flux"), f.read("error")
    axes = C.detect_axes(params)
    if "log_g" not in [a for a, _ in axes]:
        raise DataError("log_g is not a regular grid axis in this file (need ≥ 2 unique "
                        "values on regular steps)", path=grid, key="log_g",
                        hint="pass a pfsspec file written with --sample-mode grid")
    res = C.grid_crlb(flux, error, params, noise_level=noise_level, axes=axes, edge=edge)
    recs = C.grid_records(res, params, var)
    p = {"grid": str(Path(grid).resolve()), "noise_level": noise_level, "edge": edge,
         "axes": {a: s for a, s in axes}, "var": recs[0]["var"]}
    return AnalysisResult("ceiling", p, recs,
                          summary={k: recs[0].get(k) for k in ("n", "n_failed", "r2_max_median",
                                                                "schur_median")})
