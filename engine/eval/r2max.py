"""Fisher-ceiling summaries of a set of test spectra (docs/sql.md, Metrics;
docs/analyses.md, `ceiling`).

R²_max of a bin = 1 − mean_i(min(CRLB_i, Var)) / Var, where Var is the label variance
within the bin (`r2_max`) or over the whole test split (`r2_max_pop`). Why the min: an
unbiased estimator cannot do worse than predicting the mean, so a spectrum whose CRLB
exceeds the label variance caps its contribution at Var (R²_max never goes below 0).
Why within-bin Var: within-bin R² of a model is measured against the within-bin label
variance, so the ceiling must use the same denominator to be comparable. The population
version reproduces the research's per-grid-point clip(1 − CRLB/Var, 0, 1) convention.
Efficiency η = mean(CRLB) / MSE: 1 means the model reaches the Cramér-Rao bound."""

from __future__ import annotations

import numpy as np

NAN = float("nan")


def r2_max(crlb: np.ndarray, var: float) -> float:
    """1 − mean(min(CRLB_i, var)) / var; NaN when var ≤ 0 or no finite CRLB."""
    c = np.asarray(crlb, dtype=np.float64)
    c = c[np.isfinite(c)]
    if c.size == 0 or not np.isfinite(var) or var <= 0:
        return NAN
    return float(1.0 - np.mean(np.minimum(c, var)) / var)


def efficiency(crlb: np.ndarray, y: np.ndarray, yhat: np.ndarray) -> float:
    """η = mean(CRLB) / MSE over rows with a finite CRLB."""
    c = np.asarray(crlb, dtype=np.float64)
    ok = np.isfinite(c)
    if not ok.any():
        return NAN
    mse = float(np.mean((np.asarray(yhat, np.float64)[ok] - np.asarray(y, np.float64)[ok]) ** 2))
    return float(np.mean(c[ok]) / mse) if mse > 0 else NAN


def label_variance(y: np.ndarray) -> float:
    """Population variance (ddof=0) of the labels; NaN when empty."""
    y = np.asarray(y, dtype=np.float64)
    return float(np.var(y)) if y.size else NAN
