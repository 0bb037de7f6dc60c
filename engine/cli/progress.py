"""A callback that draws engine events as a rich progress bar (CLI only); a followed run
is drawn from its folded state (engine.run_state) instead, as the TUI draws it. Where the
output is not a terminal (`nohup … > log`, a pipe, CI) no bar is drawn: a plain line goes
out every $LOGG_PROGRESS_EVERY_S seconds (default 60) and at the end instead."""

from __future__ import annotations

import os
import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from engine.run_state import RunState

from rich.console import Console
from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn,
                           TimeElapsedColumn, TimeRemainingColumn)

from engine.study.state import hms


class RichProgress:
    """Context manager + callback: ``with RichProgress("build") as cb: work(callbacks=[cb])``."""

    def __init__(self, description: str, *, transient: bool = False,
                 console: Console | None = None) -> None:
        self.description = description
        self._progress = Progress(
            TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
            TextColumn("{task.fields[info]}"), TimeElapsedColumn(), TimeRemainingColumn(),
            transient=transient, console=console,
        )
        self._task = None
        self._lines = None if self._progress.console.is_terminal else PlainLines()

    def __enter__(self) -> RichProgress:
        self._progress.__enter__()
        self._task = self._progress.add_task(self.description, total=None, info="")
        return self

    def __exit__(self, *exc: Any) -> None:
        self._progress.__exit__(*exc)

    def __call__(self, event: str, /, **fields: Any) -> None:
        if event == "start":
            self._progress.update(self._task, total=fields.get("total"),
                                  description=fields.get("what", self.description))
        elif event == "progress":
            info = " ".join(f"{k}={_fmt(v)}" for k, v in fields.items()
                            if k not in ("done", "total") and not isinstance(v, (dict, list)))
            self._progress.update(self._task, completed=fields.get("done", 0),
                                  total=fields.get("total"), info=info)
            self._plain_line(fields.get("done", 0), fields.get("total"), info)
        elif event == "log":
            self._progress.console.print(fields.get("message", ""), highlight=False)

    def show(self, state: RunState) -> None:
        """Draw a followed run's state (the `on_state` of engine.runs.executor.follow):
        the bar from `run_bar(state)`, then the `log` messages not printed yet."""
        bar = run_bar(state)
        self._progress.update(self._task, **bar)
        self._plain_line(bar["completed"], bar["total"], bar["info"])
        printed = getattr(self, "_printed", 0)
        for message in state.messages[printed:]:
            self._progress.console.print(message, highlight=False)
        self._printed = len(state.messages)


    def _plain_line(self, done: Any, total: Any, info: str) -> None:
        if self._lines is not None and self._task is not None:
            what = self._progress.tasks[0].description if self._progress.tasks else ""
            line = self._lines.line(what or self.description, done, total, info)
            if line:
                self._progress.console.print(line, highlight=False, markup=False, soft_wrap=True)


class PlainLines:
    """Progress as text lines for a log file: one when `every_s` seconds have passed since
    the last, and one when done reaches total; the time left is the rate since the first
    event (a resumed build's skipped work does not count). A new `what` (a run's next
    phase: binning, training, predicting) starts afresh: its own rate, a line at once."""

    def __init__(self, every_s: float | None = None) -> None:
        self.every_s = (float(os.environ.get("LOGG_PROGRESS_EVERY_S", "60"))
                        if every_s is None else every_s)
        self._restart(None)

    def _restart(self, what: str | None) -> None:
        self._what = what
        self._first: tuple[float, float] | None = None
        self._last = -float("inf")
        self._ended = False

    def line(self, what: str, done: Any, total: Any, info: str = "",
             now: float | None = None, left_s: float | None = None) -> str | None:
        """The line to print now, or None (too soon). `left_s` replaces the estimate from
        the rate (the study knows its steps' costs better than their count does)."""
        now = time.monotonic() if now is None else now
        done = float(done or 0)
        if what != self._what:
            self._restart(what)
        if self._first is None:
            self._first = (now, done)
        end = total is not None and done >= float(total)
        if (self._ended or not end) and now - self._last < self.every_s:
            return None
        self._ended = self._ended or end
        self._last = now
        t0, d0 = self._first
        of = f"{done:.0f}/{float(total):.0f} ({100 * done / max(float(total), 1):.0f} %)" \
            if total else f"{done:.0f}"
        left = ""
        if left_s is not None and not end:
            left = f", ~{hms(left_s)} left"
        elif total and not end and done > d0:
            left = f", ~{hms((now - t0) / (done - d0) * (float(total) - done))} left"
        extra = f" {info}" if info else ""
        return f"{what}: {of}{extra} [{hms(now - t0)}{left}]"


def run_bar(state: RunState) -> dict[str, Any]:
    """The progress bar's fields for a run: done of total, status and the 4 latest metrics."""
    latest = list(state.metrics.items())[-4:]
    info = " ".join([state.status, *(f"{k}={_fmt(v)}" for k, v in latest)])
    bar = {"completed": state.done, "total": state.total, "info": info}
    return {**bar, "description": state.what} if state.what else bar


def _fmt(v: Any) -> str:
    return f"{v:.4g}" if isinstance(v, float) else str(v)
