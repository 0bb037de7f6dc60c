"""Launch, follow and cancel jobs as real subprocesses, through the engine's one launch and
one cancel (engine.runs.executor) and its one event fold (engine.run_state).

A job is the exact `logg-engine run ...` command the launch form shows, started by
`executor.spawn` (its own process group, output in a log file). The run it creates is
found by its run folder (printed by the CLI, else the newest folder created after the
launch for that model); its status and progress are that folder's folded state, the same
the CLI and ingest see. Cancel is `executor.cancel_run` on the worker (whose pid run.json
records) and the launcher: SIGTERM to every process group, SIGKILL after a grace period."""

from __future__ import annotations

import itertools
import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from engine.logtail import tail_lines
from engine.paths import runs_dir
from engine.run_state import OVER, TERMINAL, RunState, fold_run_folder
from engine.runs.executor import cancel, cancel_run, spawn

GRACE_S = 5.0
_ids = itertools.count(1)


@dataclass(frozen=True)
class LaunchRequest:
    """What the launch form asks for; `argv()` is the command shown before it starts."""

    model: str
    size: str
    preset: str = ""
    noise_level: str = ""
    overrides: tuple[str, ...] = ()
    dataset: str = ""
    detach: bool = True

    def argv(self, workspace: Path | None = None) -> list[str]:
        cmd = ["logg-engine", "run", self.model, "--size", self.size]
        if self.preset:
            cmd += ["--preset", self.preset]
        if self.noise_level:
            cmd += ["--noise-level", self.noise_level]
        if self.dataset:
            cmd += ["--dataset", self.dataset]
        for kv in self.overrides:
            cmd += ["--set", kv]
        if workspace is not None:
            cmd += ["--workspace", str(workspace)]
        if self.detach:
            cmd.append("--detach")
        return cmd

    def validate(self) -> None:
        """ValueError naming the field: checked before anything starts."""
        from engine.io.dataset import parse_size

        if not self.model:
            raise ValueError("model: choose one")
        try:
            if parse_size(self.size) <= 0:
                raise ValueError
        except Exception:
            raise ValueError(f"size: {self.size!r} is not a size like 1k, 50k, 1M") from None
        if self.noise_level:
            try:
                if float(self.noise_level) <= 0:
                    raise ValueError
            except ValueError:
                raise ValueError(f"noise level: {self.noise_level!r} must be a number > 0"
                                 ) from None
        for kv in self.overrides:
            if "=" not in kv or not kv.split("=", 1)[0].strip():
                raise ValueError(f"override {kv!r}: write key=value")


def parse_overrides(text: str) -> tuple[str, ...]:
    """'alpha=10 fit_intercept=false' or comma-separated → ('alpha=10', ...)."""
    return tuple(p for p in re.split(r"[\s,]+", text.strip()) if p)


def shell_quote(argv: list[str]) -> str:
    import shlex

    return " ".join(shlex.quote(a) for a in argv)


@dataclass
class Job:
    """One launched command and the run folder it turned into."""

    job_id: int
    argv: list[str]
    model: str
    size: str
    proc: subprocess.Popen
    log_path: Path
    launched: float
    run_dir: Path | None = None
    cancelled: bool = False
    state: RunState = field(default_factory=RunState)  # the run folder's, once found
    reported: bool = False  # its end was announced by JobManager.poll (refresh once)

    @property
    def run_id(self) -> str | None:
        return None if self.run_dir is None else self.run_dir.name

    def status(self) -> str:
        """The run's folded status once its folder is known; before, the launcher's."""
        if self.run_dir is not None:
            return self.state.status
        rc = self.proc.poll()
        if rc is None or rc == 0:
            return "starting"
        return "cancelled" if self.cancelled else "failed"

    @property
    def done(self) -> bool:
        return self.status() in OVER

    def worker_pid(self) -> int | None:
        """The worker's pid as its run folder recorded it (None before it started)."""
        return self.state.pid


class JobManager:
    """The jobs of this TUI session. Thread-safe enough for one poller: all mutation
    happens in `launch`, `poll` and `cancel`."""

    def __init__(self, workspace: Path, engine_cmd: list[str] | None = None) -> None:
        self.ws = Path(workspace)
        self.jobs: list[Job] = []
        self.engine_cmd = engine_cmd or default_engine_cmd()

    def launch(self, req: LaunchRequest) -> Job:
        req.validate()
        argv = req.argv(self.ws)
        return self.launch_argv(self.engine_cmd + argv[1:], model=req.model, size=req.size,
                                shown=argv)

    def launch_argv(self, argv: list[str], *, model: str, size: str,
                    shown: list[str] | None = None) -> Job:
        """Start `argv` in its own process group, output to a log file."""
        log_dir = self.ws / ".tui-jobs"
        log_dir.mkdir(parents=True, exist_ok=True)
        job_id = next(_ids)
        log_path = log_dir / f"job-{os.getpid()}-{job_id}.log"
        launched = time.time()
        proc = spawn(argv, log_path, env={**os.environ, "LOGG_WORKSPACE": str(self.ws)})
        job = Job(job_id, shown or argv, model, size, proc, log_path, launched)
        self.jobs.append(job)
        return job

    def poll(self) -> list[Job]:
        """Update every job's run folder and state; returns jobs that just ended."""
        ended = []
        for job in self.jobs:
            if job.reported:
                continue
            self._update(job)
            if job.done:  # announced exactly once, however `done` was first observed
                job.reported = True
                ended.append(job)
        return ended

    def _update(self, job: Job) -> None:
        if job.run_dir is None:
            job.run_dir = self._find_run_dir(job)
        if job.run_dir is not None:
            try:
                job.state = fold_run_folder(job.run_dir)
            except (OSError, ValueError):
                pass  # run.json mid-replace: keep the last state, the next poll reads it

    def _find_run_dir(self, job: Job) -> Path | None:
        """The folder named in the CLI's output, else the newest run folder of this model
        created after the launch whose run.json is not claimed by another job."""
        root = runs_dir(self.ws)
        for line in tail_lines(job.log_path, 50):  # --detach prints the run id alone
            for name in [line.strip(), *re.findall(r"runs/([\w.\-]+)", line)]:
                if name and "/" not in name and (root / name / "run.json").exists():
                    return root / name
        claimed = {j.run_dir for j in self.jobs if j.run_dir is not None}
        best = None
        try:
            entries = list(root.iterdir())
        except OSError:
            return None
        for d in entries:
            rj = d / "run.json"
            try:
                st = rj.stat()
            except OSError:
                continue
            if d in claimed or st.st_mtime < job.launched - 1 or \
                    not d.name.startswith(f"{job.model}-"):
                continue
            if best is None or st.st_mtime > best[0]:
                best = (st.st_mtime, d)
        return None if best is None else best[1]

    def cancel(self, job: Job, grace_s: float = GRACE_S) -> str:
        """engine.runs.executor's cancel on the worker and the launcher (SIGTERM to each
        process group, SIGKILL after `grace_s`); returns the final status."""
        job.cancelled = True
        self._update(job)
        if job.run_dir is not None:
            cancel_run(job.run_dir, grace_s, also=[job.proc])
        else:
            cancel(job.proc, grace_s)
        self._update(job)
        self.poll()
        return job.status()

    def log_lines(self, job: Job, n: int = 200) -> list[str]:
        """The launcher's output, the run's `log` messages and end, then its stdout.log."""
        lines = tail_lines(job.log_path, n)
        if job.run_dir is not None:
            state = job.state
            lines += [f"[log] {m}" for m in state.messages[-n:]]
            if state.status in TERMINAL:
                lines.append(f"[end] {state.status} {state.error or ''}".rstrip())
            lines += tail_lines(job.run_dir / "stdout.log", n)
        return lines[-n:]


def default_engine_cmd() -> list[str]:
    """`logg-engine` next to this Python when installed, else `python -m engine.cli`."""
    exe = Path(sys.executable).with_name("logg-engine")
    if exe.exists():
        return [str(exe)]
    found = shutil.which("logg-engine")
    return [found] if found else [sys.executable, "-m", "engine.cli"]
