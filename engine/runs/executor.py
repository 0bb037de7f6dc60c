"""The local executor, and the one launch and the one cancel every surface uses (the CLI,
the scaling grid, the Ray node's supervisor, logg-tui's Jobs):

- `spawn(argv, log_path)`: a subprocess in its own session/process group (so Ctrl-C in a
  terminal does not reach it and cancel can signal its whole group), output to a log file.
- `launch_run(ws, spec)`: create the run folder and start its worker.
- `cancel(procs)`: SIGTERM every process group, SIGKILL what is left after a grace period;
  `cancel_run(run_dir)` does that to a run's worker and, when it had to kill it before it
  wrote its `end` event, writes `end: cancelled` so every reader agrees it was cancelled.
- `follow(run_dir, proc)`: tail events.jsonl through the one fold (engine.run_state)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from engine.events import parse_events
from engine.paths import REPO_ROOT
from engine.run_state import (TERMINAL, UNTRACKED, EventFold, RunState, fold_run_folder,
                              read_run_json)

GRACE_S = 10.0
Proc = subprocess.Popen | int


def worker_env(**extra: str) -> dict[str, str]:
    """This environment with the repository importable (the worker runs `-m engine...`)."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(REPO_ROOT), env.get("PYTHONPATH", "")) if p)
    env.update(extra)
    return env


def spawn(argv: Sequence[str], log_path: Path, *, env: Mapping[str, str] | None = None,
          preexec_fn: Callable[[], Any] | None = None) -> subprocess.Popen:
    """Start `argv` leading its own process group, stdout+stderr appended to `log_path`."""
    with open(log_path, "ab") as out:
        return subprocess.Popen(list(argv), stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True,
                                env=dict(env) if env is not None else None,
                                preexec_fn=preexec_fn)


class LocalExecutor:
    """Launch `python -m engine.runs.worker RUN_DIR`, stdout/stderr → stdout.log."""

    name = "local"

    def launch(self, run_dir: Path) -> subprocess.Popen:
        run_dir = Path(run_dir).resolve()
        return spawn([sys.executable, "-m", "engine.runs.worker", str(run_dir)],
                     run_dir / "stdout.log", env=worker_env())


def launch_run(workspace: Path, spec: Any, executor: Any = None, *,
               resume: bool = True) -> tuple[Path, Any]:
    """Create the run folder for `spec` and launch its worker: (run_dir, handle). The
    executor (local by default, or a RayExecutor) is built before anything is written.
    With `resume` (the default), a model that can continue from a checkpoint starts from
    the one a lost, cancelled or failed run of the same key left (engine.runs.resume); run.json
    then names that run in `resumed_from`."""
    from engine.runs.folder import create_run_folder
    from engine.runs.provenance import provenance
    from engine.runs.registry import get_adapter
    from engine.runs.resume import find_resumable
    from engine.runs.scaling import dataset_info

    executor = executor or LocalExecutor()
    dataset = dataset_info(spec.dataset_path)
    previous = (find_resumable(workspace, spec, dataset["fingerprint"])
                if resume and getattr(get_adapter(spec.model), "resumes", False) else None)
    run_dir = create_run_folder(workspace, spec, dataset=dataset, prov=provenance(),
                                resume_from=previous)
    return run_dir, executor.launch(run_dir)


def cancel(procs: Proc | Iterable[Proc], grace_s: float = GRACE_S) -> int | None:
    """SIGTERM the process group of each process, SIGKILL the ones still alive after
    `grace_s`. Returns the exit code of the first one when it is our child, else None."""
    procs = [procs] if isinstance(procs, (subprocess.Popen, int)) else list(procs)
    for p in procs:
        _signal_group(_pid(p), signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline and any(_alive(p) for p in procs):
        time.sleep(0.05)
    for p in procs:
        if _alive(p):
            _signal_group(_pid(p), signal.SIGKILL)
    first = procs[0] if procs else None
    return first.wait() if isinstance(first, subprocess.Popen) else None


def cancel_run(run_dir: Path, grace_s: float = GRACE_S, *, also: Iterable[Proc] = ()
               ) -> RunState:
    """Cancel a run by its folder (the TUI's path): the worker whose pid run.json records,
    plus `also` (e.g. the launcher). A worker killed before it wrote `end` gets
    `end: cancelled` written for it. Returns the run's state afterwards."""
    pid = read_run_json(run_dir).get("pid")
    procs = list(also)
    if pid and int(pid) not in {_pid(p) for p in procs}:
        procs.append(int(pid))
    live = [p for p in procs if _alive(p)]
    if live:
        cancel(live, grace_s)
    for p in procs:
        if isinstance(p, subprocess.Popen):
            p.wait()
    state = fold_run_folder(run_dir, alive=False)
    if live and state.status not in TERMINAL:
        from engine.runs.folder import EventLog

        EventLog(Path(run_dir) / "events.jsonl")(
            "end", status="cancelled", closed_by="cancel",
            error=f"cancelled: the worker did not stop within {grace_s:g} s of SIGTERM "
                  "and was killed (SIGKILL)")
        state = fold_run_folder(run_dir, alive=False)
    return state


def _pid(p: Proc) -> int:
    return p.pid if isinstance(p, subprocess.Popen) else int(p)


def _signal_group(pid: int, sig: int) -> None:
    """Signal the process group `pid` leads (spawn starts one per run); the pid alone when
    it shares our group (never signal the caller itself, e.g. the TUI)."""
    try:
        pgid = os.getpgid(pid)
        if pgid == os.getpgrp():
            os.kill(pid, sig)
        else:
            os.killpg(pgid, sig)
    except ProcessLookupError:
        pass
    except PermissionError:
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass


def _alive(proc: Proc) -> bool:
    if isinstance(proc, subprocess.Popen):
        return proc.poll() is None
    from engine.procs import pid_alive

    return pid_alive(proc)


class EventFollower:
    """Tail a run's events.jsonl: whole lines only (a line being written stays buffered)."""

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


def forward(events: Iterable[Mapping[str, Any]], callbacks: Iterable[Callable[..., None]],
            **extra: Any) -> None:
    """Send a run's events to engine callbacks, as `cb(event, **fields)`, leaving out the
    bookkeeping ones (heartbeat, queued, end: the fold's business)."""
    for ev in events:
        name = ev.get("event")
        if name and name not in UNTRACKED:
            fields = {k: v for k, v in ev.items() if k not in ("event", "t")}
            for cb in callbacks:
                cb(name, **{**fields, **extra})


def follow(run_dir: Path, proc: Any, callbacks: Sequence[Callable[..., None]] = (),
           poll_s: float = 0.2, *, on_state: Callable[[RunState], None] | None = None,
           ) -> RunState:
    """Follow a run until its `end` event, or until `proc` (a Popen or a Ray handle) exits
    without one: then the fold calls it `lost`. Events go to `callbacks`, each new state
    to `on_state` (what the CLI draws). Without `proc` the run's pid decides (a run
    another command launched). Returns the final RunState."""
    tail, fold = EventFollower(run_dir), EventFold()
    while True:
        exited = proc is not None and proc.poll() is not None  # checked before reading
        new = tail.poll()
        fold.feed(new)
        forward(new, callbacks)
        state = fold.state(alive=None if proc is None else not exited)
        if new and on_state is not None:
            on_state(state)
        if state.status in TERMINAL or exited or (proc is None and state.status == "lost"):
            return state
        time.sleep(poll_s)
