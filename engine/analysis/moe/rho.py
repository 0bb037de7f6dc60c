"""ρ, the oracle-gain retention of a gate (docs/analyses.md, `moe gate`):
ρ = (R²_gate − R²_global) / (R²_oracle − R²_global), all three on the SAME rows.
ρ = 0: no better than the global model; 1: as good as the oracle; > 1: beats it.

When is ρ undefined? ρ divides by the oracle's gain over the global model. When that gain
is ≤ RHO_MIN_GAIN (the oracle does not beat the global model) the ratio is noise divided
by ~0: any value, e.g. ρ = 7 or ρ = −3, would be misleading. The same holds when the gain
is positive but its paired bootstrap CI reaches 0 (the gain itself is not established).
In both cases ρ is NaN — and NaN is what the store records (as NULL) and what
`logg-engine report` prints as "n/a (…)", with the reason from `rho_undefined_reason`.

Paired bootstrap: `resampled_r2_mae` (engine.eval.bootstrap) draws its resample indices
from the seed and the row count only, so calling it with one seed for the gate, the oracle
and the global predictions resamples the same rows for all three — the ΔR² and ρ
samples are paired, which is what makes their intervals narrow and honest."""

from __future__ import annotations

import math

import numpy as np

from engine.eval.bootstrap import percentile_ci, resampled_r2_mae
from engine.eval.metrics import r2

N_BOOT = 1000
RHO_MIN_GAIN = 1e-3  # R²_oracle − R²_global at or below this: ρ undefined (R² noise level)
NA_NO_GAIN = "n/a (oracle gain ≤ 0)"
NA_GAIN_CI = "n/a (oracle gain CI includes 0)"


def rho_undefined_reason(gain: float | None, gain_lo: float | None = None,
                         eps: float = RHO_MIN_GAIN) -> str | None:
    """None when ρ is defined for an oracle gain `gain` (= R²_oracle − R²_global) with
    lower CI bound `gain_lo` (None: not known); else the text to show instead of ρ."""
    if gain is None or not math.isfinite(gain) or gain <= eps:
        return NA_NO_GAIN
    if gain_lo is not None and math.isfinite(gain_lo) and gain_lo <= 0:
        return NA_GAIN_CI
    return None


def rho(r2_gate: float, r2_oracle: float, r2_global: float, eps: float = RHO_MIN_GAIN
        ) -> float:
    """ρ; NaN when the oracle gains ≤ eps over the global model (undefined)."""
    den = r2_oracle - r2_global
    if rho_undefined_reason(den, eps=eps) is not None:
        return float("nan")
    return float((r2_gate - r2_global) / den)


def paired_r2(y, preds: dict[str, np.ndarray], *, n_boot: int = N_BOOT, seed: int = 0
              ) -> dict[str, np.ndarray]:
    """Bootstrap R² samples of several prediction sets on identical resamples."""
    return {k: resampled_r2_mae(y, p, n_boot=n_boot, seed=seed)[0] for k, p in preds.items()}


def rho_with_ci(y, gate, oracle, glob, *, n_boot: int = N_BOOT, seed: int = 0,
                eps: float = RHO_MIN_GAIN) -> tuple[float, float, float]:
    """(ρ, lo, hi): point value and 95 % paired-bootstrap percentile interval; all three
    NaN when ρ is undefined (oracle gain ≤ eps, or the gain's 95 % CI includes 0)."""
    point = rho(r2(y, gate), r2(y, oracle), r2(y, glob), eps=eps)
    if not math.isfinite(point):
        return float("nan"), float("nan"), float("nan")
    s = paired_r2(y, {"g": gate, "o": oracle, "b": glob}, n_boot=n_boot, seed=seed)
    den = s["o"] - s["b"]
    gain_lo, _ = percentile_ci(den)
    if rho_undefined_reason(r2(y, oracle) - r2(y, glob), gain_lo, eps) is not None:
        return float("nan"), float("nan"), float("nan")
    with np.errstate(divide="ignore", invalid="ignore"):
        samples = np.where(den > eps, (s["g"] - s["b"]) / den, np.nan)
    lo, hi = percentile_ci(samples)
    return point, lo, hi


def delta_with_ci(y, a, b, *, n_boot: int = N_BOOT, seed: int = 0
                  ) -> tuple[float, float, float]:
    """(R²_a − R²_b, lo, hi) with a paired 95 % bootstrap interval."""
    s = paired_r2(y, {"a": a, "b": b}, n_boot=n_boot, seed=seed)
    lo, hi = percentile_ci(s["a"] - s["b"])
    return r2(y, a) - r2(y, b), lo, hi
