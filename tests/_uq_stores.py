"""A deterministic store of runs with predictive intervals (for the Calibration screen and
the report's uncertainty section): run folders by tests/_runfolders.py with the real
evaluate(), intervals scored by the real engine.eval.uncertainty — one run calibrated, one
overconfident (σ halved), one without σ."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
from _runfolders import make_run_folder
from _tui_stores import T_END
from scipy.stats import norm

from engine.eval.uncertainty import LEVELS, score_uncertainty
from engine.store.ingest import ingest_all

RUNS = [("c0-ridge-10k", "ridge", 10_000, 0.5, 0.5),     # σ halved: overconfident
        ("c1-vit-100k", "vit", 100_000, 0.4, 1.0),       # σ = the true scatter
        ("c2-lgbm-10k", "lgbm", 10_000, 0.6, None)]      # no σ


def add_intervals(run_dir: Path, scatter: float, scale: float) -> None:
    """σ = scale × the true scatter for every star; the score appended to metrics.json."""
    p = pd.read_parquet(run_dir / "predictions.parquet")
    s = np.full(len(p), scatter * scale)
    z68, z95 = norm.ppf(0.5 + LEVELS[0] / 2), norm.ppf(0.975)
    b = {"lo68": p.y_pred - z68 * s, "hi68": p.y_pred + z68 * s,
         "lo95": p.y_pred - z95 * s, "hi95": p.y_pred + z95 * s}
    p = p.assign(sigma=s, sigma_raw=s, **b)
    p.to_parquet(run_dir / "predictions.parquet", index=False)
    sc = score_uncertainty(p.y_true, p.y_pred, s, b, p.assign(crlb_log_g=scatter ** 2))
    m = json.loads((run_dir / "metrics.json").read_text())
    m["uncertainty"] = {**sc.to_json(), "extra": {"status": "calibrated"}}
    (run_dir / "metrics.json").write_text(json.dumps(m))


def calibration_workspace(ws: Path) -> Path:
    if ws.exists():
        shutil.rmtree(ws)
    for k, (run_id, model, size, scatter, scale) in enumerate(RUNS):
        d = make_run_folder(ws, run_id, model=model, train_size=size, noise=scatter, n=600,
                            params={"k": k}, ended=T_END + 600 * k)
        if scale is not None:
            add_intervals(d, scatter, scale)
    ingest_all(ws)
    return ws
