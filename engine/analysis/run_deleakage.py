"""`logg-engine deleakage`: read the training rows and the test split, run the study
(engine.analysis.deleakage), return an AnalysisResult."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from engine.analysis.deleakage import LOGG_MAX, SNR_MIN, study
from engine.analysis.record import AnalysisResult


def _arrays(split) -> dict[str, np.ndarray]:
    return {"flux": split.read("flux"), "error": split.read("error"),
            "log_g": split.params["log_g"].to_numpy(np.float64)}


def run_deleakage(ws: Path, *, dataset: str = "default", size: str | int = "10k",
                  noise_level: float = 1.0) -> AnalysisResult:
    from engine.io.dataset import parse_size, resolve_dataset

    ds = resolve_dataset(dataset, ws)
    n = parse_size(size)
    train, test = ds.train(n), ds.split("test")
    recs = study(_arrays(train), _arrays(test), noise_level)
    summary = {r["strategy"]: bool(r["passed"]) for r in recs}
    return AnalysisResult("deleakage", _params(ds, n, noise_level, test), recs,
                          summary=summary)


def planned_id(ws: Path, *, dataset: str = "default", size: str | int = "10k",
               noise_level: float = 1.0) -> str:
    """The id `run_deleakage` with these arguments will record, before any work."""
    from engine.io.dataset import parse_size, resolve_dataset

    ds = resolve_dataset(dataset, ws)
    return AnalysisResult("deleakage", _params(ds, parse_size(size), noise_level,
                                               ds.split("test")), []).analysis_id


def _params(ds, n: int, noise_level: float, test) -> dict:
    return {"dataset": ds.name, "dataset_fingerprint": ds.fingerprint(), "size": n,
            "noise_level": float(noise_level), "test_split": test.name,
            "model": "ridge alpha=1 + StandardScaler",
            "rule": f"logg_r2_test < {LOGG_MAX} and snr_r2_test > {SNR_MIN}"}
