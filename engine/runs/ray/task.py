"""What a Ray task does on its node: run one run's worker subprocess and supervise it.

The task is a supervisor, not a second lifecycle: the run itself is `python -m
engine.runs.ray.worker RUN_DIR` (engine.runs.runner.execute, as the local executor runs it),
in its own process group, killed with the node's Ray worker if that dies (PDEATHSIG).
`ray.cancel` raises KeyboardInterrupt here; the supervisor then SIGTERMs the worker (which
writes `end cancelled`), SIGKILLs it after the grace period, and still returns the folder.

Storage: `shared` runs in the driver's run folder (same path on this node); `ship` unpacks
the folder the driver sent into a scratch dir and returns it packed; `auto` picks `shared`
when this node sees the driver's folder (same run_id and creation time in run.json)."""

from __future__ import annotations

import json
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

POLL_S = 0.1


def run_on_node(run_dir: str, run_id: str, created: float, folder_tar: bytes, storage: str,
                num_cpus: int, grace_s: float) -> dict[str, Any]:
    """Execute the run; returns {run_id, status, returncode, storage, host, tar}."""
    from engine.runs.ray.ship import pack_folder

    mode = _choose_storage(Path(run_dir), run_id, created, storage)
    scratch = None
    work = Path(run_dir)
    if mode == "ship":
        from engine.runs.ray.ship import unpack_folder

        scratch = Path(tempfile.mkdtemp(prefix="logg-ray-"))
        work = unpack_folder(folder_tar, scratch / "runs" / run_id)
    try:
        status, rc = _supervise(_launch_worker(work, num_cpus), work, grace_s)
        return {"run_id": run_id, "status": status, "returncode": rc, "storage": mode,
                "host": socket.gethostname(),
                "tar": pack_folder(work) if mode == "ship" else None}
    finally:
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)


def _choose_storage(run_dir: Path, run_id: str, created: float, storage: str) -> str:
    visible = _sees_driver_folder(run_dir, run_id, created)
    if storage == "shared" and not visible:
        from engine.errors import RunError

        raise RunError(f"the run folder is not visible on Ray node {socket.gethostname()}",
                       path=run_dir, hint="put the workspace on a filesystem every node "
                       "mounts at the same path, or use storage 'ship'")
    if storage == "ship":
        return "ship"
    return "shared" if visible else "ship"


def _sees_driver_folder(run_dir: Path, run_id: str, created: float) -> bool:
    try:
        info = json.loads((run_dir / "run.json").read_text())
    except (OSError, ValueError):
        return False
    return info.get("run_id") == run_id and info.get("created") == created


def _launch_worker(run_dir: Path, num_cpus: int) -> subprocess.Popen:
    """The worker in its own session (signals go to its whole group), threads capped to
    the CPUs Ray gave this task, output to stdout.log as under the local executor."""
    from engine.runs.executor import spawn, worker_env

    env = worker_env(OMP_NUM_THREADS=str(max(1, int(num_cpus))))
    env.setdefault("RAY_ADDRESS", _cluster_address())  # data-parallel runs join this cluster
    return spawn([sys.executable, "-m", "engine.runs.ray.worker", str(run_dir)],
                 run_dir / "stdout.log", env=env, preexec_fn=_die_with_parent)


def _cluster_address() -> str:
    """The GCS address of the cluster this task runs on ('' outside Ray)."""
    try:
        import ray

        return str(ray.get_runtime_context().gcs_address or "")
    except Exception:  # noqa: BLE001 - not inside a Ray worker
        return ""


def _die_with_parent() -> None:
    """Linux: SIGKILL the worker if the Ray worker process that started it dies, so a
    crashed node process never leaves an orphan still writing the run folder."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except Exception:  # noqa: BLE001 - not Linux: best effort only
        pass


def _supervise(proc: subprocess.Popen, run_dir: Path, grace_s: float) -> tuple[str, int]:
    """Wait for the worker; on ray.cancel (KeyboardInterrupt) cancel it like the local
    executor does. A worker gone without an `end` event gets one written here."""
    from engine.run_state import TERMINAL, fold_events
    from engine.runs.executor import cancel
    from engine.runs.ray.ship import write_end_event
    from engine.runs.worker import EXIT

    cancelled = False
    try:
        while proc.poll() is None:
            time.sleep(POLL_S)
    except KeyboardInterrupt:
        cancelled = True
        cancel(proc, grace_s)
    rc = proc.wait()
    status = fold_events(run_dir / "events.jsonl", alive=False).status
    if status not in TERMINAL:
        status = "cancelled" if cancelled else "failed"
        how = f"signal {-rc}" if rc < 0 else f"exit status {rc}"
        write_end_event(run_dir, status, f"the worker process {proc.pid} ended by {how} "
                        "without an end event" + (" (cancelled)" if cancelled else ""))
    return status, EXIT.get(status, 1)
