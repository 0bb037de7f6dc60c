"""What both data-parallel trainers (ViT on Ray Train's TorchTrainer, LightGBM on Ray
Train's LightGBMTrainer) share: joining a Ray cluster from inside a run, where Ray Train
keeps its files, and stopping the workers when the run is cancelled.

A run with `workers > 1` is still ONE run: the runner (local worker subprocess, or the
Ray task's worker subprocess) calls the adapter, the adapter starts a Ray Train trainer
with N workers and waits for it. Rank 0 writes the run's events and checkpoints into the
run folder; the runner then predicts, scores and ingests exactly as for one process.

Cluster: `ctx.ray_address` (the run's `--address`), else `$RAY_ADDRESS` (set for runs
launched by the Ray executor), else a private Ray on this machine sized to the workers.
Stopping: the driver side polls `ctx.should_stop()` (SIGTERM) and touches `STOP` in the
run folder; every worker polls `stop_requested(run_dir)` between steps/iterations."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

STOP_FILE = "STOP"
POLL_S = 0.5


@contextmanager
def train_cluster(workers: int, address: str | None = None,
                  cpus_per_worker: float = 1.0) -> Iterator[Any]:
    """`ray`, initialised for Ray Train: joins `address` / `$RAY_ADDRESS` / an already
    initialised Ray, or starts a private local one (shut down on exit)."""
    from engine.runs.ray_executor import connect, import_ray

    ray = import_ray()
    if ray.is_initialized():
        yield ray
        return
    address = address or os.environ.get("RAY_ADDRESS") or None
    if address is not None:
        connect(address)
        try:
            yield ray
        finally:
            ray.shutdown()          # disconnects this driver only; the cluster stays
        return
    need = int(workers * cpus_per_worker) + 1    # the Train controller needs a slot too
    ray.init(num_cpus=max(need, os.cpu_count() or 1), include_dashboard=False,
             log_to_driver=False, logging_level="WARNING")
    try:
        yield ray
    finally:
        ray.shutdown()


def storage_path(run_dir: Path) -> str:
    """Where Ray Train writes its own bookkeeping: inside the run folder (on a
    multi-node cluster the run folder must be on the shared filesystem, docs/cluster.md)."""
    path = Path(run_dir).resolve() / "ray_train"
    path.mkdir(parents=True, exist_ok=True)
    return str(path)


def stop_requested(run_dir: Path | str) -> bool:
    """True once the run was asked to stop (workers poll this)."""
    return (Path(run_dir) / STOP_FILE).exists()


def fit_until_stopped(fit: Callable[[], Any], run_dir: Path,
                      should_stop: Callable[[], bool]) -> Any:
    """Call `fit()` (a Ray Train `trainer.fit`) in a thread while watching
    `should_stop()`: when it turns True, write `STOP` so the workers end at their next
    check (and save what they must); return fit's result or raise its error."""
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["result"] = fit()
        except BaseException as exc:  # noqa: BLE001 - re-raised in the caller's thread
            box["error"] = exc

    stop_path = Path(run_dir) / STOP_FILE
    thread = threading.Thread(target=target, name="ray-train-fit", daemon=True)
    thread.start()
    while thread.is_alive():
        if should_stop() and not stop_path.exists():
            stop_path.touch()
        thread.join(POLL_S)
    if "error" in box:
        raise box["error"]
    return box.get("result")


def wait_for(path: Path, timeout_s: float = 30.0) -> bool:
    """Wait until a file written by rank 0 appears (shared filesystems lag)."""
    t0 = time.monotonic()
    while not Path(path).exists():
        if time.monotonic() - t0 > timeout_s:
            return False
        time.sleep(0.2)
    return True
