"""The runner's uncertainty step: σ and 68/95 % intervals for every test star of a run.

The validation split serves two purposes that must not share rows: choosing the model
(Ridge's α, LightGBM's early stopping, the ViT's best epoch) and the conformal
calibration. A model chosen on the rows it is then calibrated on has optimistically small
residuals there and under-covers on new stars (measured: the 8-epoch ViTs covered 90–92 %
in one SNR bin). `split_validation` gives the first SELECT_ROWS validation stars to model
selection and the rest to calibration (half and half for a small split; one shared set
only when even halves would be under MIN_VAL, and then the run says so).

After the point predictions, the runner calls `predict_intervals`. It predicts the frozen
noisy calibration rows (the same realisation convention as the test split), takes the
model's own σ when its adapter has `predict_sigma(est, ctx)` and returns one (the ViT with
`loss=beta_nll`), and recalibrates per SNR bin with engine.models.conformal. A run without
a validation split (or one too small) gets no intervals: its predictions keep NULL σ and
the report says so."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

MIN_VAL = 100            # validation stars needed for a per-bin calibration
SELECT_ROWS = 1000       # validation stars that choose the model (the research's val_1k)
MIN_CALIB = 1000         # calibration stars wanted before SELECT_ROWS is taken in full


def split_validation(val: Any) -> tuple[Any, Any, str]:
    """(selection split, calibration split, how) from the run's validation split: the first
    SELECT_ROWS rows select when at least MIN_CALIB rows are left to calibrate; else the
    first half selects and the second calibrates when each half has MIN_VAL rows; else
    both use all of it ("shared"). None → (None, None, "none")."""
    if val is None:
        return None, None, "none"
    n = int(val.n_rows)
    if n >= SELECT_ROWS + MIN_CALIB:
        k = SELECT_ROWS
    elif n // 2 >= MIN_VAL:
        k = n // 2
    else:
        return val, val, "shared"
    return val.rows(0, k), val.rows(k, n), "disjoint"


def over_blocks(fn: Callable[[Any], Any], split: Any, noise_level: float) -> Any:
    """fn over the split's PredictContexts (engine.runs.runner.predict_blocks),
    concatenated (None when fn returns None)."""
    from engine.runs.runner import predict_blocks

    parts = [fn(ctx) for ctx in predict_blocks(split, noise_level)]
    if not parts or parts[0] is None:
        return None
    return np.concatenate([np.asarray(p, np.float64) for p in parts])


def predict_intervals(adapter: Any, est: Any, val: Any, test: Any, noise_level: float,
                      y_pred: np.ndarray, log: Callable[..., None] | None = None,
                      split_facts: dict[str, Any] | None = None
                      ) -> tuple[dict[str, np.ndarray] | None, dict[str, Any]]:
    """({'sigma','sigma_raw','lo68','hi68','lo95','hi95'} per test star, calibration facts),
    or (None, reason) when the run cannot be calibrated. `val` is the calibration split
    (`split_validation`); `split_facts` (how it was cut) join the facts. A failure here
    never fails the run (its point predictions stand): the reason is logged and kept in
    metrics.json."""
    try:
        out, facts = _calibrate(adapter, est, val, test, noise_level, y_pred, log)
        return out, {**facts, **(split_facts or {})}
    except Exception as exc:  # noqa: BLE001 - reported in the run's log and metrics
        reason = f"{type(exc).__name__}: {exc}"
        if log:
            log("log", message=f"no intervals: calibration failed ({reason})")
        return None, {"status": "failed", "reason": reason}


def _calibrate(adapter, est, val, test, noise_level, y_pred, log):
    from engine.models.conformal import MondrianConformal

    if val is None or int(val.n_rows) < MIN_VAL:
        n = 0 if val is None else int(val.n_rows)
        return None, {"status": "skipped", "reason": f"needs a validation split of ≥ "
                      f"{MIN_VAL} stars (has {n})"}
    if log:
        log("log", message=f"conformal calibration on {val.n_rows} validation spectra "
                           f"({val.name})")
    from engine.runs.runner import predict_split

    vp = val.params
    p_val = predict_split(adapter, est, val, noise_level)
    sig_fn = getattr(adapter, "predict_sigma", None)
    s_val = over_blocks(lambda c: sig_fn(est, c), val, noise_level) if sig_fn else None
    s_test = over_blocks(lambda c: sig_fn(est, c), test, noise_level) \
        if s_val is not None else None
    mc = MondrianConformal().fit(vp["log_g"].to_numpy(np.float64), p_val, _snr(vp), s_val)
    out = mc.predict(y_pred, _snr(test.params), s_test)
    return out, {"status": "calibrated", "n_val": int(val.n_rows), **mc.describe()}


def _snr(params) -> np.ndarray:
    return params["snr"].to_numpy(np.float64) if "snr" in params.columns \
        else np.full(len(params), np.nan)
