"""The Ray executor: each run is a Ray task with declared resources, executing the same
worker lifecycle as the local executor on a Ray node (engine.runs.ray.task); the DRIVER
unpacks shipped folders and ingests, so the store stays single-writer.

Shape of the local executor's API (engine.runs.executor):
    handle = RayExecutor(options).launch(run_dir)   # like LocalExecutor().launch → Popen
    follow(run_dir, handle, callbacks)              # engine.runs.executor.follow works as is
    cancel(handle, grace_s) / cancel_run(run_id)    # ray.cancel → SIGTERM → end cancelled
    handle.wait() → exit code (0 finished, 1 failed, 3 cancelled)
and `run_grid_ray(points, ...)` runs a whole scaling grid concurrently (same return as
engine.runs.scaling.run_grid). Ray is imported lazily: without it installed every entry
point raises SpecError telling how to install it."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.errors import SpecError
from engine.models.ray_train import connect

STORAGES = ("auto", "shared", "ship")
GRACE_S = 10.0
_LIVE: dict[str, RayRun] = {}


@dataclass(frozen=True)
class RayOptions:
    """How runs go to Ray. address: None = start a local Ray (or $RAY_ADDRESS), "auto" =
    the running cluster, "HOST:PORT" = that head. storage: where run folders live (see
    engine.runs.ray.task). num_cpus/num_gpus per run: None = per model (resources_for)."""

    address: str | None = None
    storage: str = "auto"
    num_cpus: float | None = None
    num_gpus: float | None = None
    grace_s: float = GRACE_S

    def __post_init__(self) -> None:
        if self.storage not in STORAGES:
            raise SpecError(f"unknown Ray storage {self.storage!r}", key="storage",
                            hint=f"use one of: {', '.join(STORAGES)}")


def resources_for(spec: Any, options: RayOptions, cluster: dict[str, float]) -> dict[str, float]:
    """Ray resources of one run: 1 CPU (or options.num_cpus); the ViT asks for a GPU when
    the cluster has one and its spec wants CUDA (device 'cuda…' or 'auto')."""
    cpus = options.num_cpus if options.num_cpus is not None else 1
    cpus = min(float(cpus), float(cluster.get("CPU", cpus)) or cpus)
    gpus = options.num_gpus
    if gpus is None:
        wants = spec.model == "vit" and (str(spec.device).startswith("cuda")
                                         or spec.device == "auto")
        gpus = 1 if wants and cluster.get("GPU", 0) >= 1 else 0
    return {"num_cpus": cpus, "num_gpus": float(gpus)}


class RayExecutor:
    """Submit run folders created by engine.runs.folder.create_run_folder to Ray."""

    name = "ray"

    def __init__(self, options: RayOptions | None = None) -> None:
        self.options = options or RayOptions()
        self.ray = connect(self.options.address)
        self._remote = self.ray.remote(max_retries=0)(_task_entry())

    def launch(self, run_dir: Path) -> RayRun:
        from engine.runs.folder import read_run_json
        from engine.runs.ray.ship import pack_folder
        from engine.runs.spec import RunSpec

        run_dir = Path(run_dir).resolve()
        info = read_run_json(run_dir)
        spec = RunSpec.from_json(info["spec"])
        res = resources_for(spec, self.options, self.ray.cluster_resources())
        ship = pack_folder(run_dir) if self.options.storage != "shared" else b""
        ref = self._remote.options(name=f"logg:{info['run_id']}", **res).remote(
            str(run_dir), info["run_id"], info["created"], ship, self.options.storage,
            max(1, int(res["num_cpus"])), self.options.grace_s)
        handle = RayRun(self.ray, ref, run_dir, self.options.grace_s)
        _LIVE[handle.run_id] = handle
        return handle


def _task_entry() -> Callable[..., dict[str, Any]]:
    from engine.runs.ray.task import run_on_node

    return run_on_node


class RayRun:
    """A Popen-like handle on one run's Ray task (poll/wait/returncode), so the local
    executor's `follow` works unchanged. Completion (once) = unpack a shipped folder, close
    a folder whose task died, ingest on the driver."""

    def __init__(self, ray: Any, ref: Any, run_dir: Path, grace_s: float) -> None:
        self.ray, self.ref, self.run_dir, self.grace_s = ray, ref, Path(run_dir), grace_s
        self.run_id = self.run_dir.name
        self.pid = None
        self.returncode: int | None = None
        self.status: str | None = None
        self.storage: str | None = None
        self.host: str | None = None
        self._cancelled = False

    def poll(self) -> int | None:
        if self.returncode is None:
            ready, _ = self.ray.wait([self.ref], timeout=0)
            if ready:
                self._complete()
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.poll() is None:
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(f"{self.run_id} still running after {timeout} s")
            time.sleep(0.1)
        return self.returncode  # type: ignore[return-value]

    def cancel(self, grace_s: float | None = None) -> int:
        """ray.cancel the task: the node's supervisor SIGTERMs the worker (SIGKILL after the
        grace period); a task still queued never starts. Returns the exit code."""
        if self.returncode is not None:
            return self.returncode
        self._cancelled = True
        self.ray.cancel(self.ref)
        grace = self.grace_s if grace_s is None else grace_s
        try:
            return self.wait(timeout=grace + 30.0)
        except TimeoutError:
            self.ray.cancel(self.ref, force=True)
            return self.wait()

    def _complete(self) -> None:
        from engine.run_state import TERMINAL, fold_events
        from engine.runs.ray.ship import unpack_folder, write_end_event
        from engine.runs.worker import EXIT

        try:
            out = self.ray.get(self.ref)
        except Exception as exc:  # the task died or was cancelled before it could answer
            status = "cancelled" if self._cancelled else "failed"
            if fold_events(self.run_dir / "events.jsonl", alive=False).status \
                    not in TERMINAL:
                first = (str(exc).strip().splitlines() or [""])[0][:300]
                write_end_event(self.run_dir, status,
                                f"Ray task {status}: {type(exc).__name__}: {first}".rstrip(": "))
        else:
            self.storage, self.host = out.get("storage"), out.get("host")
            if out.get("tar"):
                unpack_folder(out["tar"], self.run_dir)
        state = fold_events(self.run_dir / "events.jsonl", alive=False)
        self.status = state.status if state.status in TERMINAL else "failed"
        _ingest(self.run_dir)
        _LIVE.pop(self.run_id, None)
        self.returncode = EXIT.get(self.status, 1)


def _ingest(run_dir: Path) -> None:
    """The driver's ingest; a store problem never changes the run's outcome."""
    import sys

    try:
        from engine.store.ingest import ingest_run

        ingest_run(run_dir.parent.parent, run_dir)
    except Exception as exc:  # noqa: BLE001 - the folder stays valid; ingest later
        print(f"ingest failed (run `logg-engine ingest` later): {exc}", file=sys.stderr)


def cancel(handle: RayRun, grace_s: float = GRACE_S) -> int:
    """Same shape as engine.runs.executor.cancel, for a Ray handle."""
    return handle.cancel(grace_s)


def cancel_run(run_id: str, grace_s: float = GRACE_S) -> bool:
    """Cancel a run launched by this driver process by its id; False if none is live."""
    handle = _LIVE.get(run_id)
    if handle is None or handle.returncode is not None:
        return False
    handle.cancel(grace_s)
    return True


def launch_spec(spec: Any, workspace: Path, executor: RayExecutor, *,
                resume: bool = True) -> RayRun:
    """Create the run folder on the driver (as the local path does) and submit it."""
    from engine.runs.executor import launch_run

    return launch_run(workspace, spec, executor, resume=resume)[1]


def run_grid_ray(points: Sequence[Any], *, workspace: Path, options: RayOptions | None = None,
                 on_point: Callable[[int, Any, str], None] | None = None,
                 on_event: Callable[..., None] | None = None,
                 poll_s: float = 0.2, resume: bool = True) -> list[tuple[Any, str, str]]:
    """The scaling grid on Ray: every point not yet in the store is submitted at once (Ray
    schedules them by their resources); returns (point, run_id, status) in grid order, like
    engine.runs.scaling.run_grid. on_point(k, point, state) gets 'skipped', 'submitted' and
    the final status; on_event(event, k=..., run_id=..., **fields) gets each live run's
    events (start/progress/metric/log) as they appear in a shared folder (a shipped folder
    only has them at its end). Ctrl-C cancels every unfinished run, then re-raises."""
    from engine.runs.executor import EventFollower

    executor = RayExecutor(options)
    results: dict[int, tuple[Any, str, str]] = {}
    live: dict[int, RayRun] = {}
    tails: dict[int, EventFollower] = {}
    for k, point in enumerate(points):
        if point.existing_run:
            results[k] = (point, point.existing_run, "skipped")
            _notify(on_point, k, point, "skipped")
            continue
        live[k] = launch_spec(point.spec, Path(workspace), executor, resume=resume)
        tails[k] = EventFollower(live[k].run_dir)
        _notify(on_point, k, point, "submitted")
    try:
        while live:
            for k, handle in list(live.items()):
                done = handle.poll() is not None
                if on_event is not None:
                    _forward(tails[k], on_event, k, handle.run_id)
                if done:
                    results[k] = (points[k], handle.run_id, handle.status or "failed")
                    del live[k]
                    _notify(on_point, k, points[k], results[k][2])
            if live:
                time.sleep(poll_s)
    except KeyboardInterrupt:
        for handle in live.values():
            executor.ray.cancel(handle.ref)
        for handle in live.values():
            handle.cancel(executor.options.grace_s)
        raise
    return [results[k] for k in sorted(results)]


def _forward(tail: Any, on_event: Callable[..., None], k: int, run_id: str) -> None:
    from engine.runs.executor import forward

    forward(tail.poll(), [on_event], k=k, run_id=run_id)


def _notify(cb: Callable[[int, Any, str], None] | None, k: int, point: Any, state: str) -> None:
    if cb is not None:
        cb(k, point, state)
