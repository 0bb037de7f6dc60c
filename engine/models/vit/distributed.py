"""Data-parallel SpecViT training on Ray Train's TorchTrainer (`logg-engine run vit
--workers N`): the driver side (`fit_distributed`, called by the adapter) and the
per-worker loop (`train_loop`).

Why it follows the single-process run step for step: every worker opens the dataset
itself, walks the same global batches in the same (seed, epoch) order, draws the noise for
the whole global batch from the same seeded generator and keeps only its slice of rows;
DDP averages the gradients, and the loss of each slice is scaled so that the average is
the gradient of the global-batch mean (trainer.Parallel, Trainer._step). With dropout 0 a
2-worker fit ends at the single-process weights up to float reduction order.

Rank 0 alone appends progress/metric events to the run's events.jsonl and writes best.pt /
last.pt exactly as the single-process trainer; it also writes `outcome.json` (history, best
epoch, stopped). The driver then loads best.pt (last.pt without validation) into an
ordinary SpecViTRegressor, so the runner predicts, saves and describes it unchanged.
Workers stop together when the run's STOP file appears (SIGTERM on the run process);
a worker's RunError / SpecError / DataError is raised again in the run unchanged."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from engine.errors import EngineError, RunError, SpecError
from engine.events import emit
from engine.models.base import TrainingCancelled

OUTCOME_FILE = "outcome.json"


# ---------------------------------------------------------------------------- driver side
def fit_distributed(est: Any, ctx: Any) -> Any:
    """Fit `est` (an unfitted SpecViTRegressor) with `ctx.workers` Ray Train workers; return
    it holding the best weights, or with `stopped_` True when the run was asked to stop."""
    import torch

    from engine.models.ray_train import (STOP_FILE, fit_until_stopped, original_error,
                                         train_cluster)

    from .estimator import _labels, _n_pixels

    workers = int(ctx.workers)
    run_dir = Path(ctx.run_dir).resolve()
    ckpt = Path(ctx.checkpoint_dir).resolve()
    ckpt.mkdir(parents=True, exist_ok=True)
    # bad hyper-parameters / labels fail here, before any Ray start-up (exit 2 / 3)
    n_pixels = _n_pixels(ctx.train)
    est._train_config(torch.device("cpu"), ctx.noise_level, ctx.seed)
    est._model_config(n_pixels, len(tuple(est.targets)) or 1)
    if est.input_norm not in ("center", "none"):
        raise SpecError(f"unknown input_norm {est.input_norm!r}", key="input_norm",
                        hint="use center (subtract the per-pixel training mean) or none")
    _labels(ctx.train.params, est.targets, "train")
    if ctx.val is not None:
        _labels(ctx.val.params, est.targets, "val")
        ctx.val.noisy(ctx.noise_level)       # build the frozen val cache once, not N times
    (run_dir / STOP_FILE).unlink(missing_ok=True)      # a stale STOP from a cancelled try
    (ckpt / OUTCOME_FILE).unlink(missing_ok=True)
    root = ctx.dataset_root or ctx.train.dataset.root
    device = (getattr(ctx, "device", None) or est.device or "auto")
    config = {"params": est.get_params(), "dataset_root": str(root),
              "n_train": int(ctx.train.n_rows),
              "val_split": None if ctx.val is None else ctx.val.name,
              "noise_level": float(ctx.noise_level), "seed": int(ctx.seed),
              "run_dir": str(run_dir), "checkpoint_dir": str(ckpt),
              "resume": bool(ctx.resume)}
    with train_cluster(workers, getattr(ctx, "ray_address", None)) as ray:
        use_gpu = _use_gpu(device, ray, workers)
        config["use_gpu"] = use_gpu
        emit(ctx.callbacks, "log", message=f"data-parallel training on {workers} Ray Train "
             f"workers ({'GPU, nccl' if use_gpu else 'CPU, gloo'}); rank 0 reports")
        trainer = _torch_trainer(config, workers, use_gpu, run_dir)
        try:
            fit_until_stopped(trainer.fit, run_dir, ctx.should_stop)
        except (EngineError, TrainingCancelled):   # the runner ends the run cancelled
            raise
        except Exception as exc:  # Ray Train's TrainingFailedError and what it wraps
            raise original_error(exc) from None
    return adopt_checkpoint(est, ckpt, "cuda" if use_gpu and torch.cuda.is_available()
                            else "cpu")


def _use_gpu(device: str, ray: Any, workers: int) -> bool:
    """One GPU per worker when the device is cuda, or auto and the cluster has enough."""
    gpus = float(ray.cluster_resources().get("GPU", 0))
    if device == "cpu":
        return False
    if str(device).startswith("cuda"):
        if gpus < workers:
            raise SpecError(f"--device {device} with {workers} workers needs {workers} GPUs; "
                            f"the Ray cluster has {gpus:g}", key="device",
                            hint="lower --workers, join a cluster with more GPUs "
                                 "(--address), or use --device cpu")
        return True
    return gpus >= workers


def _torch_trainer(config: dict, workers: int, use_gpu: bool, run_dir: Path) -> Any:
    from ray.train import FailureConfig, RunConfig, ScalingConfig
    from ray.train.torch import TorchConfig, TorchTrainer

    from engine.models.ray_train import storage_path

    per_worker = {"CPU": 1, "GPU": 1} if use_gpu else {"CPU": 1}
    return TorchTrainer(
        train_loop, train_loop_config=config,
        torch_config=TorchConfig(backend="nccl" if use_gpu else "gloo"),
        scaling_config=ScalingConfig(num_workers=workers, use_gpu=use_gpu,
                                     resources_per_worker=per_worker),
        run_config=RunConfig(storage_path=storage_path(run_dir),
                             name=f"vit-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}",
                             failure_config=FailureConfig(max_failures=0)))


def adopt_checkpoint(est: Any, ckpt: Path, device: str) -> Any:
    """Give `est` the weights rank 0 left in `ckpt` (best.pt when the fit validated, else
    last.pt) and the outcome (history, best epoch, stopped) it recorded."""
    import json

    import torch

    from .model import SpecViT, ViTConfig
    from .trainer import FitOutcome

    path = ckpt / OUTCOME_FILE
    if not path.exists():
        raise RunError("data-parallel training ended without rank 0's outcome.json",
                       path=path, key="workers",
                       hint="the workers were stopped before finishing; see the Ray logs")
    doc = json.loads(path.read_text())
    best_r2 = _num(doc.get("best_r2"))
    out = FitOutcome(stopped=bool(doc["stopped"]), best_epoch=int(doc["best_epoch"]),
                     best_r2=best_r2, history=[{k: _num(v) for k, v in h.items()}
                                               for h in doc.get("history", [])])
    name = "best.pt" if doc.get("validated") and (ckpt / "best.pt").exists() else "last.pt"
    if not (ckpt / name).exists():
        if out.stopped:        # stopped before the first step: nothing to adopt
            est.stopped_, est.history_ = True, out.history
            return est
        raise RunError(f"data-parallel training left no {name}", path=ckpt, key="workers",
                       hint="rank 0 writes the checkpoints; is the run folder shared?")
    ck = torch.load(ckpt / name, map_location="cpu", weights_only=True)
    dev = est._resolve_device(device)
    cfg = ViTConfig(**ck["config"])
    model = SpecViT(cfg)
    model.load_state_dict(ck["model"])
    model = model.to(dev).eval()
    use_amp = dev.type == "cuda" and est.precision in ("auto", "bf16")
    return est._set_fitted(model, cfg, ck["y_mu"], ck["y_sigma"], ck["targets"], out, dev,
                           use_amp)


def _num(v: Any) -> Any:
    """JSON null (a NaN/inf written by engine.atomic.write_json) back to NaN."""
    return float("nan") if v is None else v


# ---------------------------------------------------------------------------- worker side
def train_loop(config: dict) -> None:
    """What every Ray Train worker runs: open the dataset, fit its slice of each global
    batch through the shared Trainer loop, rank 0 reporting and checkpointing."""
    import ray.train
    import torch

    from engine.atomic import write_json
    from engine.events import EventLog
    from engine.io.dataset import Dataset
    from engine.models.ray_train import stop_requested

    from .estimator import SpecViTRegressor
    from .trainer import Parallel

    rctx = ray.train.get_context()
    par = Parallel(rank=rctx.get_world_rank(), world_size=rctx.get_world_size())
    local = max(1, rctx.get_local_world_size())
    torch.set_num_threads(max(1, (os.cpu_count() or 1) // local))
    if config["use_gpu"]:
        import ray.train.torch as rtt
        device = str(rtt.get_device())
    else:
        device = "cpu"
    run_dir = Path(config["run_dir"])
    ckpt = Path(config["checkpoint_dir"])
    callbacks = (EventLog(run_dir / "events.jsonl"),) if par.is_main else ()
    ds = Dataset(config["dataset_root"])
    try:
        train = ds.train(config["n_train"])
        val = ds.split(config["val_split"]) if config["val_split"] else None
        est = SpecViTRegressor(**config["params"])
        est.fit_split(train, val, noise_level=config["noise_level"], seed=config["seed"],
                      callbacks=callbacks, checkpoint_dir=ckpt, resume=config["resume"],
                      should_stop=lambda: stop_requested(run_dir), device=device,
                      parallel=par)
    finally:
        ds.close()
    if par.is_main:
        write_json(ckpt / OUTCOME_FILE, {
            "stopped": bool(est.stopped_), "best_epoch": int(est.best_epoch_),
            "best_r2": float(est.best_val_r2_), "validated": val is not None,
            "history": est.history_, "world_size": par.world_size})
