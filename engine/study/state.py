"""The study folder `<ws>/studies/<name>/`: what finished, and progress for followers.

- state.json: per step key → {status, digest, seconds, finished, rc}; rewritten whole
  (tmp + rename) after every step, so a kill at any instant leaves the previous state.
- events.jsonl: start / progress / log / end events in the engine's vocabulary
  (engine.events), appended line by line, which the TUI's Jobs screen follows.
- study.lock: one study at a time per folder (a second one refuses, naming the pid).
- steps/<key>.log: each step's own output."""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.errors import SpecError
from engine.atomic import write_json


@dataclass
class StudyState:
    folder: Path
    steps: dict[str, dict[str, Any]] = field(default_factory=dict)

    @classmethod
    def load(cls, folder: Path) -> "StudyState":
        path = folder / "state.json"
        if not path.exists():
            return cls(folder)
        try:
            doc = json.loads(path.read_text())
        except ValueError as exc:
            raise SpecError(f"unreadable study state: {exc}", path=path,
                            hint="delete it to start the study's bookkeeping afresh "
                            "(finished runs are still skipped: the store holds them)") from None
        return cls(folder, dict(doc.get("steps", {})))

    def done(self, key: str, digest: str) -> bool:
        s = self.steps.get(key) or {}
        return s.get("status") == "finished" and s.get("digest") == digest

    def record(self, key: str, digest: str, status: str, seconds: float, rc: int) -> None:
        self.steps[key] = {"status": status, "digest": digest, "seconds": round(seconds, 1),
                           "rc": rc, "finished": time.strftime("%Y-%m-%dT%H:%M:%S")}
        self.folder.mkdir(parents=True, exist_ok=True)
        write_json(self.folder / "state.json", {"steps": self.steps})


def study_folder(workspace: Path, name: str) -> Path:
    return Path(workspace) / "studies" / name


class EventLog:
    """Callback that appends events to events.jsonl (one flushed line each)."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._fh = open(path, "a", buffering=1)

    def __call__(self, event: str, /, **fields: Any) -> None:
        self._fh.write(json.dumps({"t": time.time(), "event": event, "pid": os.getpid(),
                                   **fields}, default=str) + "\n")

    def close(self) -> None:
        self._fh.close()
