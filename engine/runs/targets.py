"""Scores of the extra labels of a multi-target run (`--set targets=log_g,T_eff,M_H`).

log g stays the label every model is scored on (engine.eval.protocol); a model whose
adapter has `predict_targets(est, ctx) -> {name: (N,)}` also gets R², MAE, RMSE of every
label on the same test split, written to metrics.json `extra.targets` — the store keeps
them in run_facts as `targets.<label>.r2` etc. (one run, several labels)."""

from __future__ import annotations

from typing import Any

import numpy as np


def target_scores(adapter: Any, est: Any, split: Any, noise_level: float
                  ) -> dict[str, dict[str, float]]:
    """{label: {r2, mae, rmse, n}} when the model predicts more than log g, else {}."""
    from engine.eval.metrics import point_metrics
    from engine.runs.runner import predict_blocks

    fn = getattr(adapter, "predict_targets", None)
    if fn is None:
        return {}
    blocks = [fn(est, ctx) for ctx in predict_blocks(split, noise_level)]
    if not blocks or set(blocks[0]) <= {"log_g"}:
        return {}
    params = split.params
    parts: dict[str, list[np.ndarray]] = {k: [] for k in blocks[0]}
    for block in blocks:
        for k, v in block.items():
            parts[k].append(np.asarray(v, np.float64))
    out = {}
    for name, chunks in parts.items():
        if name not in params.columns:
            continue
        m = point_metrics(params[name].to_numpy(np.float64), np.concatenate(chunks))
        out[name] = {k: m[k] for k in ("r2", "mae", "rmse", "n")}
    return out
