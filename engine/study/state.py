"""The study folder `<ws>/studies/<name>/`: what finished, and progress for followers.

- state.json: per step key → {status, digest, seconds, finished, rc}; rewritten whole
  (tmp + rename) after every step, so a kill at any instant leaves the previous state.
- events.jsonl: start / progress / log / end events in the engine's vocabulary
  (engine.events), appended line by line, which the TUI's Jobs screen follows.
- study.lock: one study at a time per folder (a second one refuses, naming the pid).
- steps/<key>.log: each step's own output."""

from __future__ import annotations

import json
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
    def load(cls, folder: Path) -> StudyState:
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
        self._fh.write(json.dumps({"t": time.time(), "event": event,
                                   **fields}, default=str) + "\n")

    def close(self) -> None:
        self._fh.close()


def study_states(workspace: Path) -> list[tuple[str, Any]]:
    """(study folder name, RunState) for every study of the workspace, newest first: the
    same fold as a run's events (engine.run_state), so `running` needs a fresh heartbeat
    and a study killed mid-step reads `lost` until it is started again."""
    from engine.run_state import fold_events

    root = Path(workspace) / "studies"
    found = sorted(root.glob("*/events.jsonl"), key=lambda p: p.stat().st_mtime, reverse=True)
    return [(p.parent.name, fold_events(p)) for p in found]


def step_tail(workspace: Path, name: str) -> str:
    """The running step's latest output line (its steps/<key>.log is the newest)."""
    from engine.logtail import last_line, newest_log

    log = newest_log(study_folder(workspace, name) / "steps")
    return last_line(log, limit=100) if log else ""


def study_line(name: str, st: Any, now: float | None = None, tail: str = "") -> str:
    """One line for a terminal: steps done, the step running, time so far and left, and
    (`tail`, while running) the step's own latest output line."""
    now = time.time() if now is None else now
    current = next((m.split(": ", 1)[1] for m in reversed(st.messages)
                    if m.startswith("running: ")), "")
    left = st.metrics.get("left_s")
    if st.status == "running" and st.since:
        elapsed = now - st.since          # this invocation of the study, live
    else:
        elapsed = st.metrics.get("elapsed_s")
    total = f"{st.total:g}" if st.total else "?"
    parts = [f"study {name}: {st.status}", f"{st.done:g}/{total} steps"]
    if st.status == "running" and current:
        parts.append(f"running {current}")
    if elapsed is not None:
        parts.append(f"elapsed {hms(elapsed)}")
    if st.status == "running" and left is not None:
        parts.append(f"left ~{hms(left)}")
    if st.status == "running" and tail:
        parts.append(tail)
    return " · ".join(parts)


def hms(seconds: float | None) -> str:
    """A duration for progress lines: 1h02m, 12m30s ("?" when unknown)."""
    if seconds is None:
        return "?"
    s = int(seconds)
    return f"{s // 3600}h{s % 3600 // 60:02d}m" if s >= 3600 else f"{s // 60}m{s % 60:02d}s"
