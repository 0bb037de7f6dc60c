"""A callback that draws engine events as a rich progress bar (CLI only)."""

from __future__ import annotations

from typing import Any

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

    def __enter__(self) -> "RichProgress":
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


def _fmt(v: Any) -> str:
    return f"{v:.4g}" if isinstance(v, float) else str(v)
