"""Progress reporting by callbacks, never print.

Long work (dataset builds, training loops, analyses) takes ``callbacks``: a sequence of
callables ``cb(event: str, **fields)``. The CLI turns events into a rich progress bar, a
run process appends them to ``events.jsonl``, the TUI draws them.

Standard events and their fields:
  start     total=<int units>, unit=<str>, what=<str>
  progress  done=<int units>, total=<int>, plus any metrics (loss=..., r2=...)
  metric    step=<int>, name=<str>, value=<float>, split=<str>   (metric history)
  log       message=<str>
  end       status=<finished|failed|cancelled>, error=<str|None>
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, Protocol

from engine.jsonsafe import json_safe


class Callback(Protocol):
    def __call__(self, event: str, /, **fields: Any) -> None: ...


Callbacks = Iterable[Callable[..., None]]


def emit(callbacks: Callbacks | None, event: str, /, **fields: Any) -> None:
    """Send one event to every callback (no-op when there are none)."""
    for cb in callbacks or ():
        cb(event, **fields)


class EventLog:
    """An engine callback appending one JSON line per event to a run's events.jsonl
    (thread-safe, flushed per line so a reader tailing the file, or a crash, sees whole
    lines). The one writer of that file: the runner, and the data-parallel workers."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()

    def __call__(self, event: str, /, **fields: Any) -> None:
        line = json.dumps({"t": time.time(), "event": event, **json_safe(fields)},
                          allow_nan=False, default=str)
        with self._lock, open(self.path, "a", encoding="utf-8") as fh:
            fh.write(line + "\n")
            fh.flush()


def parse_events(lines: Iterable[str]) -> list[dict[str, Any]]:
    """events.jsonl lines → event dicts. Blank, torn (a process killed mid-write) and
    non-object lines are skipped: the one reader every follower of a run folder uses."""
    out = []
    for line in lines:
        line = line.strip()
        if not line:
            continue
        try:
            ev = json.loads(line)
        except ValueError:
            continue
        if isinstance(ev, dict):
            out.append(ev)
    return out
