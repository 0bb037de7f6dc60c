"""Point metrics of a log g regressor, in dex (docs/sql.md, Metrics).

Why hand-written numpy instead of sklearn: the bootstrap calls these thousands of times on
resampled index arrays, and the store must not depend on sklearn's edge-case choices. Tests
pin R² to `sklearn.metrics.r2_score`."""

from __future__ import annotations

import numpy as np

NAN = float("nan")


def r2(y: np.ndarray, yhat: np.ndarray) -> float:
    """Coefficient of determination 1 − SS_res/SS_tot; NaN when fewer than 2 rows or
    the labels are constant (R² is undefined there, not 0 or 1)."""
    return NAN if np.size(y) < 2 else float(r2_along(y, yhat))


def r2_along(y: np.ndarray, yhat: np.ndarray, axis: int | None = None) -> np.ndarray:
    """R² along `axis` (None: over all values) — the one R² of the engine, also for
    many sets at once: bootstrap resamples (rows of a 2-D array, axis=1) or the targets
    of a multi-output model (axis=0). NaN where the labels are constant."""
    y = np.asarray(y, dtype=np.float64)
    yhat = np.asarray(yhat, dtype=np.float64)
    ss_res = np.sum((y - yhat) ** 2, axis=axis)
    ss_tot = np.sum((y - y.mean(axis=axis, keepdims=True)) ** 2, axis=axis)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(ss_tot > 0, 1.0 - ss_res / ss_tot, NAN)


def mae(y: np.ndarray, yhat: np.ndarray) -> float:
    """Mean absolute error (dex)."""
    return float(np.mean(np.abs(np.asarray(yhat, np.float64) - y))) if len(y) else NAN


def rmse(y: np.ndarray, yhat: np.ndarray) -> float:
    """Root mean squared error (dex)."""
    return float(np.sqrt(np.mean((np.asarray(yhat, np.float64) - y) ** 2))) if len(y) else NAN


def bias(y: np.ndarray, yhat: np.ndarray) -> float:
    """Median residual ŷ − y (dex): robust sign of a systematic offset."""
    return float(np.median(np.asarray(yhat, np.float64) - y)) if len(y) else NAN


def p90(y: np.ndarray, yhat: np.ndarray) -> float:
    """90th percentile of |ŷ − y| (dex): the tail a user cares about."""
    return float(np.percentile(np.abs(np.asarray(yhat, np.float64) - y), 90)) if len(y) else NAN


def slope(y: np.ndarray, yhat: np.ndarray) -> float:
    """Slope of a degree-1 least-squares fit of ŷ on y: < 1 means regression to the mean."""
    y = np.asarray(y, dtype=np.float64)
    yhat = np.asarray(yhat, dtype=np.float64)
    if y.size < 2 or not (np.isfinite(y).all() and np.isfinite(yhat).all()) \
            or float(np.ptp(y)) == 0.0:
        return NAN
    return float(np.polyfit(y, yhat, 1)[0])


def point_metrics(y: np.ndarray, yhat: np.ndarray) -> dict[str, float]:
    """Every point metric (docs/sql.md, Metrics) at once, keyed by the names the store uses."""
    return {
        "n": int(len(y)),
        "r2": r2(y, yhat),
        "mae": mae(y, yhat),
        "rmse": rmse(y, yhat),
        "bias": bias(y, yhat),
        "p90": p90(y, yhat),
        "slope": slope(y, yhat),
    }
