"""Oracle MoE scoring (docs/analyses.md, `moe oracle`): true-label routing, per-bin
tables and the mask-aligned overall comparison.

Mask alignment: the oracle and the global model are ALWAYS scored on the same
rows. Two subsets are reported: `covered` (rows whose true labels are inside the bins'
box) and `all` (every test row; out-of-range rows go to the clamped bin or, with
`fallback`, to the global model). Per-bin rows compare both models on that bin's rows."""

from __future__ import annotations

from typing import Any

import numpy as np

from engine.analysis.moe.rho import N_BOOT, delta_with_ci, paired_r2
from engine.eval.bootstrap import percentile_ci
from engine.eval.metrics import mae, r2


def route_oracle(P: np.ndarray, g: np.ndarray, bins: np.ndarray) -> np.ndarray:
    """ŷ_i = P[i, bin_i]; rows with bin −1 (fallback) take the global prediction."""
    out = g.copy()
    ok = bins >= 0
    out[ok] = P[np.flatnonzero(ok), bins[ok]]
    return out


def bin_rows(y, oracle, glob, bins, labels, n_train, info) -> list[dict[str, Any]]:
    """One record per bin: n_train, n_test, oracle/global R² and MAE on the bin's rows."""
    rows = []
    for b, label in enumerate(labels):
        m = bins == b
        ro, rg = r2(y[m], oracle[m]), r2(y[m], glob[m])
        rows.append({"section": "bin", "bin": b, "label": label, "n_train": n_train[b],
                     "n_test": int(m.sum()), "r2_oracle": ro, "r2_global": rg,
                     "delta_r2": ro - rg, "mae_oracle": mae(y[m], oracle[m]),
                     "mae_global": mae(y[m], glob[m]), **_expert_fields(info[b])})
    return rows


def overall_rows(y, oracle, glob, in_range, *, n_boot: int = N_BOOT, seed: int = 0
                 ) -> list[dict[str, Any]]:
    """`covered` and `all` subsets: oracle vs global on identical rows, with paired
    95 % bootstrap CIs of both R² and of ΔR²."""
    out = []
    for subset, m in (("covered", in_range), ("all", np.ones_like(in_range, bool))):
        yy, o, g = y[m], oracle[m], glob[m]
        s = paired_r2(yy, {"o": o, "g": g}, n_boot=n_boot, seed=seed)
        d, dlo, dhi = delta_with_ci(yy, o, g, n_boot=n_boot, seed=seed)
        out.append({"section": "overall", "subset": subset, "n": int(m.sum()),
                    "coverage": float(m.mean()) if m.size else float("nan"),
                    "r2_oracle": r2(yy, o), "r2_oracle_ci": percentile_ci(s["o"]),
                    "r2_global": r2(yy, g), "r2_global_ci": percentile_ci(s["g"]),
                    "delta_r2": d, "delta_r2_ci": (dlo, dhi),
                    "mae_oracle": mae(yy, o), "mae_global": mae(yy, g)})
    return out


def _expert_fields(info: dict[str, Any]) -> dict[str, Any]:
    return {"expert": info.get("expert"), "alpha": info.get("alpha"),
            "best_iteration": info.get("best_iteration"), "note": info.get("reason")}
