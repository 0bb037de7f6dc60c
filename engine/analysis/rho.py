"""ρ, the oracle-gain retention of a gate (ORIGINAL_SYSTEM.md §4.1):
ρ = (R²_gate − R²_global) / (R²_oracle − R²_global), all three on the SAME rows.
ρ = 0: no better than the global model; 1: as good as the oracle; > 1: beats it.

Paired bootstrap: `resampled_r2_mae` (engine.eval.bootstrap) draws its resample indices
from the seed and the row count only, so calling it with one seed for the gate, the oracle
and the global predictions resamples the same rows for all three — the ΔR² and ρ
samples are paired, which is what makes their intervals narrow and honest."""

from __future__ import annotations

import numpy as np

from engine.eval.bootstrap import percentile_ci, resampled_r2_mae
from engine.eval.metrics import r2

N_BOOT = 1000


def rho(r2_gate: float, r2_oracle: float, r2_global: float) -> float:
    """ρ; NaN when the oracle gains nothing over the global model (undefined)."""
    den = r2_oracle - r2_global
    if not np.isfinite(den) or den == 0:
        return float("nan")
    return float((r2_gate - r2_global) / den)


def paired_r2(y, preds: dict[str, np.ndarray], *, n_boot: int = N_BOOT, seed: int = 0
              ) -> dict[str, np.ndarray]:
    """Bootstrap R² samples of several prediction sets on identical resamples."""
    return {k: resampled_r2_mae(y, p, n_boot=n_boot, seed=seed)[0] for k, p in preds.items()}


def rho_with_ci(y, gate, oracle, glob, *, n_boot: int = N_BOOT, seed: int = 0
                ) -> tuple[float, float, float]:
    """(ρ, lo, hi): point value and 95 % paired-bootstrap percentile interval."""
    point = rho(r2(y, gate), r2(y, oracle), r2(y, glob))
    s = paired_r2(y, {"g": gate, "o": oracle, "b": glob}, n_boot=n_boot, seed=seed)
    den = s["o"] - s["b"]
    with np.errstate(divide="ignore", invalid="ignore"):
        samples = np.where(den != 0, (s["g"] - s["b"]) / den, np.nan)
    lo, hi = percentile_ci(samples)
    return point, lo, hi


def delta_with_ci(y, a, b, *, n_boot: int = N_BOOT, seed: int = 0
                  ) -> tuple[float, float, float]:
    """(R²_a − R²_b, lo, hi) with a paired 95 % bootstrap interval."""
    s = paired_r2(y, {"a": a, "b": b}, n_boot=n_boot, seed=seed)
    lo, hi = percentile_ci(s["a"] - s["b"])
    return r2(y, a) - r2(y, b), lo, hi
