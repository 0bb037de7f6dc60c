"""Store reads for the Calibration screen (views `calibration`, `coverage_by_bin` and table
`uq_coverage`, migration 010), through logg_tui.queries' one read-only connection helper."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from logg_tui.queries import query

MAX_DEFAULT_RUNS = 4


def calibration_data(ws: Path, run_ids: list[str]) -> dict[str, pd.DataFrame]:
    """{'summary': calibration rows, 'reliability': (run_id, model, nominal, observed, lo,
    hi) of the Gaussian levels and the stated 68/95 % intervals, 'snr': per-SNR-bin rows}.
    Without marked runs: the newest finished runs that have σ (at most 4), plus every
    finished run without σ in the summary (so the screen can say which lack one)."""
    if not _has_calibration(ws):
        empty = pd.DataFrame()
        return {"summary": empty, "reliability": empty, "snr": empty, "missing": empty}
    summary = query(ws, "SELECT c.*, r.train_size, r.ended FROM calibration c "
                        "JOIN runs r USING (run_id) ORDER BY r.ended DESC NULLS LAST, run_id")
    if run_ids:
        summary = summary[summary["run_id"].isin(run_ids)]
        chosen = summary[summary["has_sigma"]]
    else:
        chosen = summary[summary["has_sigma"]].head(MAX_DEFAULT_RUNS)
    ids = chosen["run_id"].tolist()
    missing = summary[~summary["has_sigma"]]
    if not ids:
        return {"summary": chosen, "reliability": pd.DataFrame(), "snr": pd.DataFrame(),
                "missing": missing}
    marks = ", ".join("?" * len(ids))
    rel = query(ws, f"SELECT u.run_id, r.model, u.scheme, u.nominal, u.observed, u.lo, u.hi "
                    f"FROM uq_coverage u JOIN runs r USING (run_id) WHERE u.run_id IN "
                    f"({marks}) AND u.scheme IN ('gauss', 'all') ORDER BY u.run_id, "
                    f"u.nominal", ids)
    snr = query(ws, f"SELECT * FROM coverage_by_bin WHERE scheme = 'snr' AND n > 0 AND "
                    f"run_id IN ({marks}) ORDER BY run_id, bin", ids)
    return {"summary": chosen, "reliability": rel, "snr": snr, "missing": missing}


def _has_calibration(ws: Path) -> bool:
    df = query(ws, "SELECT count(*) AS n FROM duckdb_views() WHERE view_name = 'calibration'")
    return bool(int(df["n"].iloc[0]))
