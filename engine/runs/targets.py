"""Scores of the extra labels of a multi-target run (`--set targets=log_g,T_eff,M_H`).

log g stays the label every model is scored on (engine.eval.protocol); a model whose
adapter has `predict_targets(est, X) -> {name: (N,)}` also gets R², MAE, RMSE of every
label on the same test split, written to metrics.json `extra.targets` — the store keeps
them in run_facts as `targets.<label>.r2` etc. (one run, several labels)."""

from __future__ import annotations

from typing import Any

import numpy as np


def target_scores(adapter: Any, est: Any, X: np.ndarray, params: Any, rows: int
                  ) -> dict[str, dict[str, float]]:
    """{label: {r2, mae, rmse, n}} when the model predicts more than log g, else {}."""
    from engine.eval.metrics import point_metrics

    fn = getattr(adapter, "predict_targets", None)
    if fn is None:
        return {}
    first = fn(est, X[:1])
    if set(first) <= {"log_g"}:
        return {}
    parts: dict[str, list[np.ndarray]] = {k: [] for k in first}
    for i in range(0, len(X), rows):
        for k, v in fn(est, X[i:i + rows]).items():
            parts[k].append(np.asarray(v, np.float64))
    out = {}
    for name, chunks in parts.items():
        if name not in params.columns:
            continue
        m = point_metrics(params[name].to_numpy(np.float64), np.concatenate(chunks))
        out[name] = {k: m[k] for k in ("r2", "mae", "rmse", "n")}
    return out
