"""The runner's uncertainty step: σ and 68/95 % intervals for every test star of a run.

After the point predictions, the runner calls `predict_intervals`. It predicts the frozen
noisy validation split (the same realisation convention as the test split), takes the
model's own σ when its adapter has `predict_sigma(est, X)` and returns one (the ViT with
`loss=beta_nll`), and recalibrates per SNR bin with engine.models.conformal. A run without
a validation split (or one too small) gets no intervals: its predictions keep NULL σ and
the report says so."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

MIN_VAL = 100            # validation stars needed for a per-bin calibration


def predict_in_chunks(fn: Callable[[np.ndarray], Any], X: np.ndarray, rows: int) -> Any:
    """fn over row chunks of X, concatenated (None when fn returns None)."""
    parts = [fn(X[i:i + rows]) for i in range(0, len(X), rows)]
    if not parts or parts[0] is None:
        return None
    return np.concatenate([np.asarray(p, np.float64) for p in parts])


def predict_intervals(adapter: Any, est: Any, val: Any, noise_level: float, X_test: np.ndarray,
                      test_params: Any, y_pred: np.ndarray, rows: int,
                      log: Callable[..., None] | None = None
                      ) -> tuple[dict[str, np.ndarray] | None, dict[str, Any]]:
    """({'sigma','sigma_raw','lo68','hi68','lo95','hi95'} per test star, calibration facts),
    or (None, reason) when the run cannot be calibrated. A failure here never fails the
    run (its point predictions stand): the reason is logged and kept in metrics.json."""
    try:
        return _calibrate(adapter, est, val, noise_level, X_test, test_params, y_pred, rows,
                          log)
    except Exception as exc:  # noqa: BLE001 - reported in the run's log and metrics
        reason = f"{type(exc).__name__}: {exc}"
        if log:
            log("log", message=f"no intervals: calibration failed ({reason})")
        return None, {"status": "failed", "reason": reason}


def _calibrate(adapter, est, val, noise_level, X_test, test_params, y_pred, rows, log):
    from engine.models.conformal import MondrianConformal

    if val is None or int(val.n_rows) < MIN_VAL:
        n = 0 if val is None else int(val.n_rows)
        return None, {"status": "skipped", "reason": f"needs a validation split of ≥ "
                      f"{MIN_VAL} stars (has {n})"}
    if log:
        log("log", message=f"conformal calibration on {val.n_rows} validation spectra "
                           f"({val.name})")
    X_val = val.noisy(noise_level)
    vp = val.params
    p_val = predict_in_chunks(lambda x: adapter.predict(est, x), X_val, rows)
    p_val = p_val if p_val.ndim == 1 else p_val[:, 0]
    sig_fn = getattr(adapter, "predict_sigma", None)
    s_val = predict_in_chunks(lambda x: sig_fn(est, x), X_val, rows) if sig_fn else None
    s_test = predict_in_chunks(lambda x: sig_fn(est, x), X_test, rows) \
        if s_val is not None else None
    mc = MondrianConformal().fit(vp["log_g"].to_numpy(np.float64), p_val, _snr(vp), s_val)
    out = mc.predict(y_pred, _snr(test_params), s_test)
    return out, {"status": "calibrated", "n_val": int(val.n_rows), **mc.describe()}


def _snr(params) -> np.ndarray:
    return params["snr"].to_numpy(np.float64) if "snr" in params.columns \
        else np.full(len(params), np.nan)
