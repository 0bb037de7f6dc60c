"""Jobs: the jobs launched from this session, live progress and ETA from each run's
folded events.jsonl (engine.run_state), the log of the selected job, cancel with
confirmation."""

from __future__ import annotations

import time

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import DataTable, Log, ProgressBar, Static

from logg_tui.jobs import Job, shell_quote
from logg_tui.screens.base import LoggScreen
from logg_tui.screens.confirm import ConfirmScreen
from logg_tui.widgets.frame_table import FrameTable



class JobsScreen(LoggScreen):
    HELP = """Studies of this workspace (`logg-engine study`) on top: steps done, the step
running, time so far and left. Below, the jobs launched from this TUI session.
Each is a real `logg-engine run` subprocess in its own process group. Progress and ETA
come from the run's events.jsonl; the log shows the launcher's output and the run's
stdout.log. l launch a new job, c cancel the selected job (asks first; SIGTERM, then
SIGKILL after a grace period), enter open the finished run."""

    BINDINGS = [
        Binding("l", "app.launch", "Launch"),
        Binding("c", "cancel", "Cancel job"),
        Binding("enter", "open", "Open run", show=False),
    ]

    def body(self) -> ComposeResult:
        yield Static("", id="studies")
        yield FrameTable(key_column="job", id="jobs", classes="jobs")
        yield Static("", id="jobinfo")
        yield ProgressBar(id="bar", show_eta=False)
        yield Log(id="joblog", highlight=False)

    def load(self) -> None:
        self._poll()

    @work(thread=True, exclusive=True, group="jobs")
    def _poll(self) -> None:
        """Progress comes from the app's poller (JobManager.poll); here only the log."""
        job = self._selected()
        lines = self.app.jobs.log_lines(job, 100) if job else []
        studies = study_lines(self.app.workspace)
        self.app.call_from_thread(self._show, lines, studies)

    def _selected(self) -> Job | None:
        jobs = self.app.jobs.jobs
        if not jobs:
            return None
        key = self.query_one("#jobs", FrameTable).current_key()
        return next((j for j in jobs if str(j.job_id) == key), jobs[-1])

    def _show(self, lines: list[str], studies: list[str] | None = None) -> None:
        self.query_one("#studies", Static).update("\n".join(studies or []))
        jobs = self.app.jobs.jobs
        table = self.query_one("#jobs", FrameTable)
        cursor = table.cursor_row
        table.show_rows(JOB_COLUMNS, jobs_rows(jobs))
        if jobs:
            table.move_cursor(row=min(cursor, len(jobs) - 1))
        job = self._selected()
        info, bar = self.query_one("#jobinfo", Static), self.query_one("#bar", ProgressBar)
        if job is None:
            info.update("No jobs yet: press l to launch one.")
            bar.update(total=None, progress=0)
        else:
            info.update(f"$ {shell_quote(job.argv)}\n{progress_line(job)}")
            bar.update(total=job.state.total or None, progress=job.state.done)
        log = self.query_one("#joblog", Log)
        if lines != getattr(self, "_last_lines", None):
            log.clear()
            log.write_lines(lines)
            self._last_lines = lines
        running = sum(not j.done for j in jobs)
        self.say(f"{len(jobs)} jobs · {running} active")

    @on(DataTable.RowHighlighted)
    def _highlight(self) -> None:
        self._last_lines = None

    def action_cancel(self) -> None:
        job = self._selected()
        if job is None or job.done:
            self.say("no running job selected", error=True)
            return

        def confirmed(yes: bool | None) -> None:
            if yes:
                self.say(f"cancelling job {job.job_id}…")
                self._cancel(job)

        self.app.push_screen(ConfirmScreen(
            f"Cancel job {job.job_id} ({job.model} {job.size})?\nSIGTERM now, SIGKILL "
            f"after the grace period."), confirmed)

    @work(thread=True, group="cancel")
    def _cancel(self, job: Job) -> None:
        status = self.app.jobs.cancel(job)
        self.app.call_from_thread(self.say, f"job {job.job_id}: {status}")

    def action_open(self) -> None:
        job = self._selected()
        if job is not None and job.run_id and job.status() == "finished":
            self.app.open_run(job.run_id)


def study_lines(workspace) -> list[str]:
    """One line per study of the workspace (`logg-engine study`), newest first; a running
    one ends with its step's latest output line."""
    from engine.study.state import step_tail, study_line, study_states

    return [study_line(name, st, tail=step_tail(workspace, name) if st.status == "running"
                       else "") for name, st in study_states(workspace)[:3]]


JOB_COLUMNS = ["job", "model", "size", "status", "progress", "eta", "elapsed", "run"]


def jobs_rows(jobs: list[Job]) -> list[tuple]:
    now = time.time()
    rows = []
    for j in jobs:
        frac, eta = j.state.fraction, j.state.eta_s(now)
        rows.append((j.job_id, j.model, j.size, j.status(),
                     "" if frac is None else f"{100 * frac:.0f}%",
                     "" if eta is None else f"{eta:.0f}s", f"{now - j.launched:.0f}s",
                     j.run_id or ""))
    return rows


def progress_line(job: Job) -> str:
    """The selected job's line: run id, status, done/total and the latest metrics."""
    p = job.state
    return (f"run: {job.run_id or '(waiting)'} · {job.status()} · {p.unit} "
            f"{p.done:g}/{p.total or '?'} · {metrics_text(p.metrics)}")


def metrics_text(m: dict) -> str:
    return " ".join(f"{k}={v:.4g}" for k, v in list(m.items())[-4:])
