"""Run a study's steps in order, each as a `logg-engine` child process.

Resume rules (why a study can be stopped anywhere):
- a step is skipped when state.json says it finished with the same command line;
- a step that was running when the study died is simply run again: every step is
  idempotent (the scaling grid skips runs the store holds, an analysis with the same
  parameters replaces itself, `data generate` resumes shard by shard);
- the child gets SIGINT when the study process dies, even by kill -9 (Linux
  PR_SET_PDEATHSIG), and the commands answer SIGINT by cancelling their run cleanly, so no
  orphan keeps training beside the restarted study.
- Ctrl-C reaches the child too (same process group): it cancels its run and the study
  stops after it, exit 130."""

from __future__ import annotations

import ctypes
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.errors import RunError, SpecError
from engine.events import emit
from engine.study.plan import Step
from engine.study.state import EventLog, StudyState

PR_SET_PDEATHSIG = 1
HEARTBEAT_S = 15.0


@dataclass(frozen=True)
class StepOutcome:
    step: Step
    status: str          # finished | skipped | listed | failed | cancelled
    seconds: float


def _die_with_parent() -> None:  # runs in the child between fork and exec
    # a study started as a background job (`nohup make study &`) inherits SIGINT ignored,
    # and so would its steps: then neither their stop signal below nor a Ctrl-C reaches them
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGINT)
    except OSError:
        pass


def engine_command(argv: Sequence[str], workspace: Path) -> list[str]:
    """The child command: this interpreter running the engine CLI on the workspace."""
    return [sys.executable, "-m", "engine.cli", *argv, "--workspace", str(workspace)]


def time_left(steps: Sequence[Step], state: StudyState, todo: Sequence[Step]) -> float:
    """Remaining seconds: the plan's costs for the steps still to do, each scaled by how
    the finished steps of its kind (ridge, lgbm, vit, moe, …: the key's first word) really
    compared with their planned costs; a kind not measured yet by all finished steps.
    One scale for all would let fast kinds (a 1M MoE fit in 10 min) shrink slow ones."""
    done = [(s, state.steps[s.key]["seconds"]) for s in steps
            if s.key in state.steps and state.steps[s.key].get("status") == "finished"
            and state.steps[s.key].get("seconds", 0) > 0]

    def ratio(pairs: list) -> float | None:
        return sum(sec for _, sec in pairs) / sum(s.cost_s for s, _ in pairs) if pairs else None

    overall = ratio(done) or 1.0
    by_kind = {k: ratio([d for d in done if _kind(d[0]) == k]) for k in map(_kind, todo)}
    return sum((by_kind[_kind(s)] or overall) * s.cost_s for s in todo)


def _kind(step: Step) -> str:
    return step.key.split("-")[0]


def run_study(steps: Sequence[Step], *, workspace: Path, folder: Path,
              callbacks: Sequence[Callable[..., None]] = (),
              on_step: Callable[[int, Step, str], None] | None = None,
              keep_going: bool = False) -> list[StepOutcome]:
    """Run every step not yet finished; returns one outcome per step. A failed step
    stops the study (RunError naming its log) unless keep_going."""
    from filelock import FileLock, Timeout

    folder.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(folder / "study.lock"))
    try:
        lock.acquire(timeout=0)
    except Timeout:
        raise SpecError("another study is running in this folder", path=folder,
                        hint="wait for it, or stop it (Ctrl-C) before starting again") from None
    log = EventLog(folder / "events.jsonl")
    cbs = [log, *callbacks]
    try:
        return _run_all(steps, workspace, folder, cbs, on_step, keep_going)
    finally:
        log.close()
        lock.release()


def _run_all(steps, workspace, folder, cbs, on_step, keep_going) -> list[StepOutcome]:
    state = StudyState.load(folder)
    t0 = time.time()
    emit(cbs, "start", total=len(steps), unit="steps", what="study")
    outcomes: list[StepOutcome] = []
    status = "finished"
    try:
        for k, step in enumerate(steps):
            todo = [s for s in steps[k:] if not s.skip_reason and not state.done(s.key, s.digest)]
            emit(cbs, "progress", done=k, total=len(steps), current=step.title,
                 elapsed_s=round(time.time() - t0), left_s=round(time_left(steps, state, todo)))
            outcome = _one(step, k, state, workspace, folder, cbs, on_step)
            outcomes.append(outcome)
            if outcome.status == "failed" and not keep_going:
                status = "failed"
                raise RunError(f"study step {step.key!r} failed",
                               path=folder / "steps" / f"{step.key}.log",
                               hint="read the step's log; rerun the same study command to "
                               "continue from this step (finished steps are not redone)")
        emit(cbs, "progress", done=len(steps), total=len(steps), current="done",
             elapsed_s=round(time.time() - t0), left_s=0)
        return outcomes
    except KeyboardInterrupt:
        status = "cancelled"
        raise
    finally:
        emit(cbs, "end", status=status, error=None)


def _one(step, k, state, workspace, folder, cbs, on_step) -> StepOutcome:
    if step.skip_reason:
        emit(cbs, "log", message=f"{step.title}: {step.skip_reason}")
        _notify(on_step, k, step, "listed")
        return StepOutcome(step, "listed", 0.0)
    if state.done(step.key, step.digest):
        _notify(on_step, k, step, "skipped")
        return StepOutcome(step, "skipped", 0.0)
    _notify(on_step, k, step, "running")
    emit(cbs, "log", message=f"running: {step.title}")
    t = time.time()
    rc = _spawn(step, workspace, folder, heartbeat=lambda: emit(cbs, "heartbeat"))
    seconds = time.time() - t
    if rc in (130, -signal.SIGINT):
        raise KeyboardInterrupt
    status = "finished" if rc == 0 else "failed"
    state.record(step.key, step.digest, status, seconds, rc)
    emit(cbs, "log", message=f"{step.title}: {status} in {seconds:.0f} s")
    _notify(on_step, k, step, status)
    return StepOutcome(step, status, seconds)


def _spawn(step: Step, workspace: Path, folder: Path,
           heartbeat: Callable[[], None] = lambda: None) -> int:
    """Run the step's command with its output in steps/<key>.log; wait for it, also
    through a Ctrl-C (the child gets the same SIGINT and cancels its own run). A
    heartbeat every HEARTBEAT_S tells followers the study is alive during long steps."""
    logs = folder / "steps"
    logs.mkdir(parents=True, exist_ok=True)
    with open(logs / f"{step.key}.log", "ab") as out:
        out.write(f"$ logg-engine {' '.join(step.argv)}\n".encode())
        out.flush()
        proc = subprocess.Popen(engine_command(step.argv, workspace), stdout=out,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                preexec_fn=_die_with_parent)
        while True:
            try:
                return proc.wait(timeout=HEARTBEAT_S)
            except subprocess.TimeoutExpired:
                heartbeat()
            except KeyboardInterrupt:
                _interrupt(proc)


def _interrupt(proc: subprocess.Popen) -> None:
    """Ctrl-C: make sure the child got it (a terminal sends it to the group; `kill -INT`
    of the study alone does not), then keep waiting for its clean exit."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)


def _notify(on_step: Any, k: int, step: Step, state: str) -> None:
    if on_step:
        on_step(k, step, state)
