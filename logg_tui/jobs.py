"""Launch, follow and cancel jobs as real subprocesses.

A job is the exact `logg-engine run ...` command the launch form shows, started in its own
process group (start_new_session) with its output in a log file. The run it creates is
found by its run folder (printed by the CLI, else the newest folder created after the
launch for that model); its progress comes from that folder's events.jsonl. Cancel sends
SIGTERM to every process group involved (the CLI's and the worker's, whose pid run.json
records), then SIGKILL to whatever is left after a grace period."""

from __future__ import annotations

import itertools
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from engine.paths import runs_dir
from engine.procs import pid_alive as alive
from logg_tui.queries import Progress, read_progress, tail

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
    progress: Progress = field(default_factory=Progress)
    reported: bool = False  # its end was announced by JobManager.poll (refresh once)

    @property
    def run_id(self) -> str | None:
        return None if self.run_dir is None else self.run_dir.name

    def status(self) -> str:
        """The run's own status when known; else the launcher process's."""
        if self.progress.status not in ("starting",):
            if self.progress.status == "running" and not self._worker_alive():
                # the worker may have written its end event after our last read
                self.progress = read_progress(self.run_dir / "events.jsonl")
                if self.progress.status == "running":
                    return "cancelled" if self.cancelled else "lost"
            return self.progress.status
        rc = self.proc.poll()
        if rc is None:
            return "starting"
        if self.cancelled:
            return "cancelled"
        return "failed" if rc != 0 else ("starting" if self.run_dir is None else "running")

    @property
    def done(self) -> bool:
        return self.status() in ("finished", "failed", "cancelled", "lost")

    def worker_pid(self) -> int | None:
        if self.run_dir is None:
            return None
        try:
            pid = json.loads((self.run_dir / "run.json").read_text()).get("pid")
        except (OSError, ValueError):
            return None
        return int(pid) if pid else None

    def _worker_alive(self) -> bool:
        pid = self.worker_pid()
        return (pid is not None and alive(pid)) or self.proc.poll() is None


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
        with open(log_path, "wb") as out:
            proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL, start_new_session=True,
                                    env={**os.environ, "LOGG_WORKSPACE": str(self.ws)})
        job = Job(job_id, shown or argv, model, size, proc, log_path, launched)
        self.jobs.append(job)
        return job

    def poll(self) -> list[Job]:
        """Update every job's run folder and progress; returns jobs that just ended."""
        ended = []
        for job in self.jobs:
            if job.reported:
                continue
            if job.run_dir is None:
                job.run_dir = self._find_run_dir(job)
            if job.run_dir is not None:
                job.progress = read_progress(job.run_dir / "events.jsonl")
            if job.done:  # announced exactly once, however `done` was first observed
                job.reported = True
                ended.append(job)
        return ended

    def _find_run_dir(self, job: Job) -> Path | None:
        """The folder named in the CLI's output, else the newest run folder of this model
        created after the launch whose run.json is not claimed by another job."""
        root = runs_dir(self.ws)
        for line in tail(job.log_path, 50):  # --detach prints the run id alone
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
        """SIGTERM the launcher's and the worker's process groups, SIGKILL after
        `grace_s`; returns the final status."""
        job.cancelled = True
        pids = [p for p in (job.proc.pid, job.worker_pid()) if p]
        for pid in pids:
            signal_group(pid, signal.SIGTERM)
        deadline = time.monotonic() + grace_s
        while time.monotonic() < deadline and any(alive(p) for p in pids):
            job.proc.poll()
            time.sleep(0.05)
        for pid in pids:
            if alive(pid):
                signal_group(pid, signal.SIGKILL)
        job.proc.wait(timeout=grace_s)
        self.poll()
        return job.status()

    def log_lines(self, job: Job, n: int = 200) -> list[str]:
        """The launcher's output, the run's `log` events, then its stdout.log."""
        lines = tail(job.log_path, n)
        if job.run_dir is not None:
            for line in tail(job.run_dir / "events.jsonl", 400):
                try:
                    ev = json.loads(line)
                except ValueError:
                    continue
                if ev.get("event") == "log":
                    lines.append(f"[log] {ev.get('message', '')}")
                elif ev.get("event") == "end":
                    lines.append(f"[end] {ev.get('status')} {ev.get('error') or ''}".rstrip())
            lines += tail(job.run_dir / "stdout.log", n)
        return lines[-n:]


def default_engine_cmd() -> list[str]:
    """`logg-engine` next to this Python when installed, else `python -m engine.cli`."""
    exe = Path(sys.executable).with_name("logg-engine")
    if exe.exists():
        return [str(exe)]
    found = shutil.which("logg-engine")
    return [found] if found else [sys.executable, "-m", "engine.cli"]


def signal_group(pid: int, sig: int) -> None:
    """Signal the process group `pid` leads (start_new_session); the pid alone if not."""
    try:
        pgid = os.getpgid(pid)
        if pgid == os.getpgrp():  # never signal our own group (the TUI itself)
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
