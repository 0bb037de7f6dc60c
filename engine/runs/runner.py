"""The in-process run lifecycle (what the worker subprocess executes):

start → train (adapter) → save the model → predict the frozen noisy test split →
evaluate (engine.eval.protocol) → predictions.parquet + metrics.json (tmp + rename) →
`end` event → ingest into the store.

The end event is always written (finished | failed with the reason | cancelled after
SIGTERM); a process killed with SIGKILL writes none, and ingest calls it `lost`."""

from __future__ import annotations

import os
import signal
import socket
import sys
import threading
import time
import traceback
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from engine.atomic import write_json, write_parquet
from engine.errors import EngineError
from engine.events import emit
from engine.models.base import TrainingCancelled
from engine.models.contract import ModelAdapter, PredictContext, TrainContext
from engine.runs.folder import (HEARTBEAT_S, EventLog, Heartbeat, peak_rss_mb, read_run_json,
                                update_run_json)
from engine.runs.spec import RunSpec

if TYPE_CHECKING:
    from engine.io.dataset import Split

PRED_META = ("snr", "snr_median", "snr_l2", "mag", "T_eff", "M_H", "a_M", "C_M", "crlb_log_g")
EVAL_META = ("snr", "snr_l2", "mag", "T_eff", "M_H", "log_g", "crlb_log_g")
PREDICT_ROWS = 4096
UQ_COLUMNS = ("sigma", "sigma_raw", "lo68", "hi68", "lo95", "hi95")


class StopFlag:
    """Set by the SIGTERM handler; trainers poll it through `ctx.should_stop`."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def set(self, *_: Any) -> None:
        self._event.set()

    def __call__(self) -> bool:
        return self._event.is_set()


def workspace_of(run_dir: Path) -> Path:
    return Path(run_dir).resolve().parent.parent


def execute(run_dir: Path, *, ingest: bool = True, heartbeat_s: float | None = None) -> str:
    """Run the job described by `run_dir/run.json`; return the final status."""
    run_dir = Path(run_dir).resolve()
    info = read_run_json(run_dir)
    spec = RunSpec.from_json(info["spec"])
    log = EventLog(run_dir / "events.jsonl")
    stop = StopFlag()
    previous = None
    if threading.current_thread() is threading.main_thread():
        previous = signal.signal(signal.SIGTERM, stop.set)
    update_run_json(run_dir, pid=os.getpid(), host=socket.gethostname(), started=time.time())
    heartbeat_s = heartbeat_s or float(os.environ.get("LOGG_HEARTBEAT_S", 0) or HEARTBEAT_S)
    beat = Heartbeat(log, interval=heartbeat_s).start()
    status, error = "failed", None
    try:
        log("start", run_id=info["run_id"], what=f"{spec.model} {info['run_id']}",
            pid=os.getpid(), host=socket.gethostname())
        _train_and_evaluate(spec, run_dir, log, stop, resumed_from=info.get("resumed_from"))
        status = "finished"
    except TrainingCancelled as exc:
        status, error = "cancelled", f"cancelled (SIGTERM): {exc}"
    except EngineError as exc:
        error = exc.render()
    except Exception as exc:  # any failure ends the run with its reason, never silently
        error = f"{type(exc).__name__}: {exc}"
        traceback.print_exc(file=sys.stderr)
    finally:
        beat.stop()
        if status == "failed" and stop():
            status = "cancelled"
        log("end", status=status, error=error, peak_rss_mb=peak_rss_mb())
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
    if ingest:
        _ingest(run_dir)
    return status


def _ingest(run_dir: Path) -> None:
    """Record the finished folder in the store; a store problem never changes the run's
    own outcome (the folder is the truth and can be ingested again)."""
    try:
        from engine.store.ingest import ingest_run

        ingest_run(workspace_of(run_dir), run_dir)
    except Exception as exc:  # noqa: BLE001 - reported, the run folder stays valid
        print(f"ingest failed (run `logg-engine ingest` later): {exc}", file=sys.stderr)


def _train_and_evaluate(spec: RunSpec, run_dir: Path, log: EventLog, stop: StopFlag, *,
                        resumed_from: str | None = None) -> None:
    from engine.io.dataset import resolve_dataset
    from engine.runs.registry import get_adapter

    from engine.runs.intervals import predict_intervals, split_validation

    ds = resolve_dataset(spec.dataset_path, workspace_of(run_dir))
    try:
        adapter = get_adapter(spec.model)
        select, calib, how = split_validation(ds.split(spec.val_split) if spec.val_split
                                              else None)
        split_facts = {"validation": how,
                       "n_select": 0 if select is None else int(select.n_rows)}
        if how != "none":
            log("log", message=f"validation {spec.val_split}: {split_facts['n_select']} rows "
                               f"choose the model, {calib.n_rows} calibrate ({how})")
        if resumed_from:
            log("log", message=f"continuing from the checkpoint of {resumed_from} "
                               "(a lost, cancelled or failed run with the same parameters)")
        ctx = TrainContext(train=ds.train(spec.train_size), val=select,
                           noise_level=spec.noise_level, seed=spec.seed,
                           augment_copies=spec.augment_copies or 1, callbacks=(log,),
                           run_dir=run_dir, checkpoint_dir=run_dir / "checkpoints",
                           resume=bool(resumed_from),
                           device=spec.device, should_stop=stop,
                           dataset_fingerprint=ds.fingerprint(), dataset_root=ds.root,
                           workers=spec.workers, ray_address=spec.ray_address)
        t0 = time.perf_counter()
        est = adapter.train(adapter.build(dict(spec.params)), ctx)
        train_s = time.perf_counter() - t0
        if stop():
            raise TrainingCancelled("stopped during training")
        adapter.save(est, ctx.checkpoint_dir)
        test = ds.split(spec.test_split)
        log("log", message=f"predicting {test.n_rows} test spectra ({test.name})")
        t1 = time.perf_counter()
        y_pred = predict_split(adapter, est, test, spec.noise_level, callbacks=(log,),
                               should_stop=stop)
        predict_s = time.perf_counter() - t1
        intervals, uq_facts = predict_intervals(adapter, est, calib, test, spec.noise_level,
                                                y_pred, log, split_facts)
        extra = {"train_seconds": train_s, "predict_seconds": predict_s,
                 "n_train": int(ctx.train.n_rows), "n_test": int(test.n_rows),
                 "peak_rss_mb": peak_rss_mb(),
                 "model": adapter.describe(est)}
        from engine.runs.targets import target_scores
        targets = target_scores(adapter, est, test, spec.noise_level)
        if targets:
            extra["targets"] = targets
        realisation = "stored" if test.uses_stored_noisy(spec.noise_level) else "seed42"
        _score_and_write(spec, run_dir, test, y_pred, extra, ds.fingerprint(), realisation,
                         log, intervals, uq_facts)
    finally:
        ds.close()


def predict_split(adapter: ModelAdapter, est: Any, split: Split, noise_level: float,
                  callbacks: Any = (), should_stop: Any = None) -> np.ndarray:
    """The model's log g for every row of `split`, scored on its frozen noisy flux, in
    blocks of PREDICT_ROWS; each block's PredictContext names the split and its rows.
    A progress event (stage "predict") follows each block, so a slow predictor (the
    template fit: minutes for test_10k) shows how far it is; `should_stop` is checked
    between blocks."""
    from engine.events import emit

    out = []
    emit(callbacks, "start", total=split.n_rows, unit="rows", what=f"predicting {split.name}")
    for ctx in predict_blocks(split, noise_level):
        if should_stop is not None and should_stop():
            raise TrainingCancelled("stopped while predicting")
        out.append(np.asarray(adapter.predict(est, ctx)))
        emit(callbacks, "progress", stage="predict", done=ctx.stop, total=split.n_rows)
    return np.concatenate(out)


def predict_blocks(split: Split, noise_level: float) -> list[PredictContext]:
    """The PredictContexts of `split` (blocks of PREDICT_ROWS of its frozen noisy flux):
    what every per-row model method (predict, predict_sigma, predict_targets) is given."""
    X = split.noisy(noise_level)
    return [PredictContext(split=split, flux=X[i:i + PREDICT_ROWS], noise_level=noise_level,
                           start=i) for i in range(0, len(X), PREDICT_ROWS)]


def _score_and_write(spec: RunSpec, run_dir: Path, test: Any, y_pred: np.ndarray,
                     extra: dict[str, Any], fingerprint: str, realisation: str,
                     log: EventLog, intervals: dict[str, np.ndarray] | None = None,
                     uq_facts: dict[str, Any] | None = None) -> None:
    from engine.eval.protocol import evaluate

    params = test.params
    y_true = params["log_g"].to_numpy(np.float64)
    meta = pd.DataFrame({c: params[c].to_numpy(np.float64) for c in EVAL_META
                         if c in params.columns and np.isfinite(params[c].to_numpy(
                             np.float64)).any()})
    key = {"dataset_fingerprint": fingerprint, "split": spec.test_split,
           "split_shards": list(test.shards), "noise_level": spec.noise_level,
           "realisation": realisation}
    ev = evaluate(y_true, y_pred, meta, eval_key=key)
    ev = replace(ev, extra={**ev.extra, **extra})
    out = ev.to_json()
    if intervals is not None:
        from engine.eval.uncertainty import score_uncertainty
        uq = score_uncertainty(y_true, y_pred, intervals["sigma"], intervals, meta)
        out["uncertainty"] = {**uq.to_json(), "extra": uq_facts or {}}
        log("log", message=uq.summary_line())
    elif uq_facts:
        out["uncertainty"] = {"coverage": [], "scores": [], "extra": uq_facts}
    _write_predictions(run_dir / "predictions.parquet", params, y_true, y_pred, intervals)
    write_json(run_dir / "metrics.json", out)
    o = ev.overall
    emit([log], "metric", step=0, name="test_r2", value=o.get("r2"), split="test")
    emit([log], "metric", step=0, name="test_mae", value=o.get("mae"), split="test")
    log("log", message=ev.summary_line())


def _write_predictions(path: Path, params: pd.DataFrame, y_true: np.ndarray,
                       y_pred: np.ndarray, intervals: dict[str, np.ndarray] | None = None
                       ) -> None:
    """One row per test spectrum (dev-contracts.md), written atomically; σ and the
    interval bounds (engine.runs.intervals) when the run has them, else NaN."""
    cols: dict[str, Any] = {"idx": np.arange(len(y_true), dtype=np.int64), "y_true": y_true,
                            "y_pred": np.asarray(y_pred, dtype=np.float64)}
    for c in PRED_META:
        cols[c] = params[c].to_numpy(np.float64) if c in params.columns \
            else np.full(len(y_true), np.nan)
    for c in UQ_COLUMNS:
        cols[c] = np.asarray(intervals[c], np.float64) if intervals is not None \
            else np.full(len(y_true), np.nan)
    write_parquet(path, pd.DataFrame(cols))
