"""A callback that draws engine events as a rich progress bar (CLI only); a followed run
is drawn from its folded state (engine.run_state) instead, as the TUI draws it."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from engine.run_state import RunState

from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn,
                           TimeElapsedColumn, TimeRemainingColumn)


class RichProgress:
    """Context manager + callback: ``with RichProgress("build") as cb: work(callbacks=[cb])``."""

    def __init__(self, description: str, *, transient: bool = False) -> None:
        self.description = description
        self._progress = Progress(
            TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
            TextColumn("{task.fields[info]}"), TimeElapsedColumn(), TimeRemainingColumn(),
            transient=transient,
        )
        self._task = None

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
        elif event == "log":
            self._progress.console.print(fields.get("message", ""), highlight=False)

    def show(self, state: RunState) -> None:
        """Draw a followed run's state (the `on_state` of engine.runs.executor.follow):
        the bar from `run_bar(state)`, then the `log` messages not printed yet."""
        self._progress.update(self._task, **run_bar(state))
        printed = getattr(self, "_printed", 0)
        for message in state.messages[printed:]:
            self._progress.console.print(message, highlight=False)
        self._printed = len(state.messages)


def run_bar(state: RunState) -> dict[str, Any]:
    """The progress bar's fields for a run: done of total, status and the 4 latest metrics."""
    latest = list(state.metrics.items())[-4:]
    info = " ".join([state.status, *(f"{k}={_fmt(v)}" for k, v in latest)])
    bar = {"completed": state.done, "total": state.total, "info": info}
    return {**bar, "description": state.what} if state.what else bar


def _fmt(v: Any) -> str:
    return f"{v:.4g}" if isinstance(v, float) else str(v)
