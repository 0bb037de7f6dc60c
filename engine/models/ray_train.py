"""What both data-parallel trainers (ViT on Ray Train's TorchTrainer, LightGBM on Ray
Train's LightGBMTrainer) share: importing Ray and joining a cluster from inside a run
(also used by the Ray executor, engine.runs.ray.executor, one layer up), where Ray Train
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
import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from engine.errors import SpecError

INSTALL_HINT = "pip install -e '.[ray]'   (installs ray[train]==2.60.0)"
STOP_FILE = "STOP"
POLL_S = 0.5
STOP_GRACE_S = 20.0   # after a stop request, how long the workers get to end by themselves


def import_ray() -> Any:
    """`ray`, or a SpecError (exit 2) saying how to install it."""
    try:
        import ray
    except ImportError:
        raise SpecError("--executor ray needs Ray, which is not installed", key="executor",
                        hint=INSTALL_HINT) from None
    return ray


def connect(address: str | None = None) -> Any:
    """Initialise Ray once per driver process (quietly: worker output goes to each run's
    stdout.log, not to the terminal)."""
    ray = import_ray()
    if ray.is_initialized():
        return ray
    kwargs: dict[str, Any] = {"log_to_driver": False, "logging_level": "WARNING"}
    if address is None and not os.environ.get("RAY_ADDRESS"):
        kwargs["include_dashboard"] = False
    try:
        ray.init(address=address, **kwargs)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        raise SpecError(f"cannot connect to Ray at {address!r}: {exc}", key="address",
                        hint="start a cluster with `ray start --head` (docs/cluster.md) or "
                        "leave out --address to start a local one") from None
    return ray


@contextmanager
def train_cluster(workers: int, address: str | None = None,
                  cpus_per_worker: float = 1.0) -> Iterator[Any]:
    """`ray`, initialised for Ray Train: joins `address` / `$RAY_ADDRESS` / an already
    initialised Ray, or starts a private local one (shut down on exit)."""
    ray = import_ray()
    if ray.is_initialized():
        yield ray
        return
    address = address or os.environ.get("RAY_ADDRESS") or None
    handler = _sigterm_handler()
    if address is not None:
        connect(address)
        _restore_sigterm(handler)
        try:
            yield ray
        finally:
            ray.shutdown()          # disconnects this driver only; the cluster stays
        return
    need = int(workers * cpus_per_worker) + 1    # the Train controller needs a slot too
    ray.init(num_cpus=max(need, os.cpu_count() or 1), include_dashboard=False,
             log_to_driver=False, logging_level="WARNING")
    _restore_sigterm(handler)
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


def _sigterm_handler() -> Any:
    """The Python SIGTERM handler in force (the runner's StopFlag), or None off the main
    thread (signals can only be handled there)."""
    if threading.current_thread() is not threading.main_thread():
        return None
    return signal.getsignal(signal.SIGTERM)


def _restore_sigterm(handler: Any) -> None:
    """`ray.init` installs Ray's own SIGTERM handler in this process, which aborts it: put
    the runner's back so SIGTERM still means "cancel the run" (end event, cancelled)."""
    if handler is not None:
        signal.signal(signal.SIGTERM, handler)


def fit_until_stopped(fit: Callable[[], Any], run_dir: Path,
                      should_stop: Callable[[], bool], grace_s: float = STOP_GRACE_S) -> Any:
    """Call `fit()` (a Ray Train `trainer.fit`) in a thread while watching
    `should_stop()`: when it turns True, write `STOP` so the workers end at their next
    check (and save what they must); return fit's result or raise its error.

    If the workers have not ended `grace_s` after the stop request, raise
    TrainingCancelled and leave the (daemon) fit thread behind. Why: a cancel SIGTERMs
    the run's whole process group, and a private local Ray keeps its GCS and raylet in
    that group, so they die with the signal and fit() would wait for dead workers forever.
    When Ray survives (a cluster, `ray.cancel`), the workers see STOP and end well before."""
    from engine.models.base import TrainingCancelled

    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["result"] = fit()
        except BaseException as exc:  # noqa: BLE001 - re-raised in the caller's thread
            box["error"] = exc

    stop_path = Path(run_dir) / STOP_FILE
    thread = threading.Thread(target=target, name="ray-train-fit", daemon=True)
    thread.start()
    since: float | None = None
    while thread.is_alive():
        if since is None and should_stop():
            since = time.monotonic()
            stop_path.touch()
        if since is not None and time.monotonic() - since > grace_s:
            raise TrainingCancelled(f"the Ray Train workers did not stop within {grace_s:g} s")
        thread.join(POLL_S)
    if "error" in box:
        raise box["error"]
    return box.get("result")


def original_error(exc: BaseException) -> Any:
    """The error a worker raised, out of Ray Train's wrappers (WorkerGroupError →
    worker_failures[rank] → the exception, possibly wrapped once more). An EngineError
    (non-finite loss, collapse, bad data) comes back as itself; anything else becomes a
    RunError naming the worker and the original exception with its message."""
    from engine.errors import EngineError, RunError

    failures = getattr(exc, "worker_failures", None) or {}
    found = [(rank, _unwrap(err)) for rank, err in sorted(failures.items())]
    for _rank, err in found:
        if isinstance(err, EngineError):
            return err
    if found:
        rank, err = found[0]
        return RunError(f"data-parallel training failed on worker {rank}: "
                        f"{type(err).__name__}: {_message(err)}", key="workers",
                        hint="see the worker's traceback in the Ray logs (ray_train/ in the "
                        "run folder, /tmp/ray/session_latest/logs); --workers 1 shows "
                        "whether it is the model or the cluster")
    cause = _unwrap(getattr(exc, "controller_failure", None) or exc)
    if isinstance(cause, EngineError):
        return cause
    return RunError(f"Ray Train failed: {type(cause).__name__}: {_message(cause)}",
                    key="workers",
                    hint="check the Ray cluster (`ray status`) or run with --workers 1")


def _unwrap(err: BaseException) -> BaseException:
    for _ in range(5):
        inner = getattr(err, "_base_exc", None) or getattr(err, "cause", None)
        if not isinstance(inner, BaseException) or inner is err:
            break
        err = inner
    return err


def _message(err: BaseException) -> str:
    """A Ray wrapper without a cause keeps the original message on its last line."""
    text = str(err).strip()
    if type(err).__module__.startswith("ray") and text:
        return text.splitlines()[-1]
    return text


def wait_for(path: Path, timeout_s: float = 30.0) -> bool:
    """Wait until a file written by rank 0 appears (shared filesystems lag)."""
    t0 = time.monotonic()
    while not Path(path).exists():
        if time.monotonic() - t0 > timeout_s:
            return False
        time.sleep(0.2)
    return True
