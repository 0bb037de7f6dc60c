"""The local executor: a run is a worker subprocess in its own process group (so Ctrl-C in
the terminal does not reach it and cancel can signal the whole group), cancelled with
SIGTERM, then SIGKILL after a grace period. `follow` tails its events.jsonl."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from engine.events import parse_events
from engine.paths import REPO_ROOT
from engine.runs.folder import read_run_json

GRACE_S = 10.0


class LocalExecutor:
    """Launch `python -m engine.runs.worker RUN_DIR`, stdout/stderr → stdout.log."""

    name = "local"

    def launch(self, run_dir: Path) -> subprocess.Popen:
        run_dir = Path(run_dir).resolve()
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (str(REPO_ROOT), env.get("PYTHONPATH", "")) if p)
        with open(run_dir / "stdout.log", "ab") as out:
            return subprocess.Popen([sys.executable, "-m", "engine.runs.worker", str(run_dir)],
                                    stdout=out, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL, start_new_session=True, env=env)


def cancel(proc: subprocess.Popen | int, grace_s: float = GRACE_S) -> int | None:
    """SIGTERM the worker's process group, SIGKILL it if still alive after `grace_s`.
    Returns the exit code when the process was our child, else None."""
    pid = proc.pid if isinstance(proc, subprocess.Popen) else int(proc)
    _killpg(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline:
        if not _alive(proc):
            break
        time.sleep(0.05)
    else:
        _killpg(pid, signal.SIGKILL)
    if isinstance(proc, subprocess.Popen):
        return proc.wait()
    return None


def cancel_run(run_dir: Path, grace_s: float = GRACE_S) -> bool:
    """Cancel a run by its folder (the TUI's path): signals the pid from run.json.
    False when the run has no live process."""
    pid = read_run_json(run_dir).get("pid")
    if not pid or not _alive(int(pid)):
        return False
    cancel(int(pid), grace_s)
    return True


def _killpg(pid: int, sig: int) -> None:
    try:
        os.killpg(pid, sig)  # start_new_session: the worker leads its own group
    except ProcessLookupError:
        pass
    except PermissionError:
        os.kill(pid, sig)


def _alive(proc: subprocess.Popen | int) -> bool:
    if isinstance(proc, subprocess.Popen):
        return proc.poll() is None
    from engine.procs import pid_alive

    return pid_alive(proc)


class EventFollower:
    """Tail a run's events.jsonl: whole lines only, forwarded to callbacks."""

    def __init__(self, run_dir: Path) -> None:
        self.path = Path(run_dir) / "events.jsonl"
        self._pos = 0
        self._buf = ""

    def poll(self) -> list[dict[str, Any]]:
        try:
            with open(self.path, encoding="utf-8", errors="replace") as fh:
                fh.seek(self._pos)
                data = fh.read()
                self._pos = fh.tell()
        except FileNotFoundError:
            return []
        self._buf += data
        *lines, self._buf = self._buf.split("\n")
        return parse_events(lines)


def follow(run_dir: Path, proc: subprocess.Popen | None,
           callbacks: Sequence[Callable[..., None]] = (), poll_s: float = 0.2,
           ) -> dict[str, Any] | None:
    """Forward events to callbacks until the `end` event (returned) or the worker exits
    without one (returns None: it was killed or crashed before writing it)."""
    tail = EventFollower(run_dir)
    while True:
        exited = proc is not None and proc.poll() is not None
        for ev in tail.poll():
            name = ev.pop("event", None)
            ev.pop("t", None)
            if name == "end":
                return {"event": "end", **ev}
            if name and name not in ("heartbeat", "queued"):
                for cb in callbacks:
                    cb(name, **ev)
        if exited:
            return None
        time.sleep(poll_s)
