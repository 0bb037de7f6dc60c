"""The one fold of a run's events.jsonl into its state (status, progress, metrics, the
"lost" rule). Ingest, the CLI follower, the TUI's Jobs screen and progress line, the
Ray executor and the in-flight listing of `runs ls` / the TUI's Runs screen all read a run
through this module, so they cannot disagree about what a run is doing.

Status rules: the `end` event decides (finished | failed | cancelled). Without one the
run is `queued` while its runner has not started (no pid yet) and its folder is fresh,
`running` while its process lives and it wrote something in the last STALE_S seconds, and
`lost` when its process is gone or nothing was written for STALE_S seconds (a hung or a
SIGKILLed worker). The process is only checked on the host that started it; elsewhere the
heartbeat's age alone decides.

Why here (a base module, not engine/runs): the store's ingest uses it and the store sits
below runs in the layers (docs/dev-contracts.md)."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from engine.events import parse_events
from engine.logtail import tail_lines

STALE_S = 60.0
TERMINAL = ("finished", "failed", "cancelled")   # written by an `end` event
OVER = (*TERMINAL, "lost")                        # nothing more will happen
UNTRACKED = ("heartbeat", "queued", "end")        # events that are not callbacks' business
TAIL_BYTES = 4096


@dataclass(frozen=True)
class RunState:
    """What a run's events say so far, plus the liveness verdict."""

    status: str = "queued"   # queued | running | finished | failed | cancelled | lost
    done: float = 0.0
    total: float | None = None
    unit: str = ""
    what: str = ""                 # the latest `start`'s description
    started: float | None = None   # the first `start` event (the runner's)
    since: float | None = None     # the `start` that set the total: the ETA's origin
    ended: float | None = None
    last: float | None = None      # the newest event of any kind (heartbeats included)
    error: str | None = None
    metrics: Mapping[str, float] = field(default_factory=dict)  # latest value per name
    history: tuple[tuple, ...] = ()  # metric events: (step, split, name, value, t)
    messages: tuple[str, ...] = ()   # `log` events, in order
    peak_rss_mb: float | None = None
    pid: int | None = None

    @property
    def over(self) -> bool:
        return self.status in OVER

    @property
    def fraction(self) -> float | None:
        return None if not self.total else min(1.0, self.done / self.total)

    def eta_s(self, now: float | None = None) -> float | None:
        """Linear ETA from the time since the progress started and the fraction done."""
        f = self.fraction
        if not f or self.since is None or self.status != "running":
            return None
        return max(0.0, ((now or time.time()) - self.since) * (1 - f) / f)

    def duration_s(self) -> float | None:
        """start → end; for a run that did not end cleanly, start → its last event."""
        if self.started is None:
            return None
        if self.ended is not None:
            return self.ended - self.started
        return None if self.status == "running" or self.last is None \
            else self.last - self.started


class EventFold:
    """The accumulator behind `fold_events`; `EventFollower`-style tailers feed it event by
    event and ask for the state whenever they draw."""

    def __init__(self) -> None:
        self._f: dict[str, Any] = {"metrics": {}, "history": [], "messages": []}

    def feed(self, events: Iterable[Mapping[str, Any]]) -> EventFold:
        for ev in events:
            self._one(ev)
        return self

    def _one(self, ev: Mapping[str, Any]) -> None:
        f, kind, t = self._f, ev.get("event"), _float(ev.get("t"))
        if t is not None:
            f["last"] = t
        rss = _float(ev.get("peak_rss_mb") or ev.get("rss_mb"))
        if rss is not None:
            f["peak_rss_mb"] = max(rss, f.get("peak_rss_mb") or rss)
        if kind == "start":  # the runner's start, then the trainer's start with a total
            if f.get("started") is None:
                f["started"] = t
            f["pid"] = _int(ev.get("pid")) or f.get("pid")
            f["host"] = ev.get("host") or f.get("host")
            if ev.get("total") or f.get("since") is None:
                f["since"] = t if t is not None else f.get("since")
            f["total"] = _float(ev.get("total")) or f.get("total")
            f["unit"] = ev.get("unit") or f.get("unit", "")
            f["what"] = str(ev.get("what") or f.get("what", ""))
            f["done"] = 0.0
        elif kind == "progress":
            f["done"] = _float(ev.get("done")) or 0.0
            f["total"] = _float(ev.get("total")) or f.get("total")
            f["metrics"].update({k: float(v) for k, v in ev.items() if _number(v)
                                 and k not in ("t", "done", "total")})
        elif kind == "metric" and ev.get("name") is not None:
            value = _float(ev.get("value"))
            if value is not None:
                f["metrics"][str(ev["name"])] = value
            f["history"].append((_int(ev.get("step")), ev.get("split"), str(ev["name"]),
                                 value, t))
        elif kind == "log":
            f["messages"].append(str(ev.get("message", "")))
        elif kind == "end":
            f["end"] = (str(ev.get("status") or "failed"), ev.get("error"), t)

    def state(self, *, pid: int | None = None, host: str | None = None,
              alive: bool | None = None, now: float | None = None) -> RunState:
        """The state now. `alive` (the caller holds the process) overrides the pid check;
        `pid`/`host` default to what the runner's `start` event recorded."""
        f = self._f
        pid = pid if pid is not None else f.get("pid")
        status, error, ended = f.get("end") or (None, None, None)
        if status is None:
            now = time.time() if now is None else now
            status = _unended_status(f, pid, host or f.get("host"), alive, now)
        return RunState(status=status, done=f.get("done", 0.0), total=f.get("total"),
                        unit=f.get("unit", ""), what=f.get("what", ""),
                        started=f.get("started"),
                        since=f.get("since"), ended=ended, last=f.get("last"),
                        error=None if error is None else str(error),
                        metrics=dict(f["metrics"]), history=tuple(f["history"]),
                        messages=tuple(f["messages"]), peak_rss_mb=f.get("peak_rss_mb"),
                        pid=pid)


def fold_events(source: Iterable[str] | Path | str, *, pid: int | None = None,
                host: str | None = None, alive: bool | None = None,
                now: float | None = None) -> RunState:
    """events.jsonl (a path, or its lines) → RunState. Blank and torn lines are skipped
    (engine.events.parse_events). Given a path, the process is checked BEFORE the file is
    read: a worker that writes `end` and exits in between is then seen ended, never lost."""
    if isinstance(source, (str, Path)):
        if alive is None and pid is not None:
            alive = _alive(pid, host)
        return EventFold().feed(parse_events(_lines(Path(source)))).state(
            pid=pid, host=host, alive=alive, now=now)
    return EventFold().feed(parse_events(source)).state(pid=pid, host=host, alive=alive,
                                                        now=now)


def fold_run_folder(run_dir: Path, *, run: Mapping[str, Any] | None = None,
                    alive: bool | None = None, now: float | None = None) -> RunState:
    """A run folder's state: its events with the pid and host from run.json. run.json
    without a pid means the runner has not started yet: queued (or lost once stale)."""
    run_dir = Path(run_dir)
    run = read_run_json(run_dir) if run is None else run
    pid = _int(run.get("pid"))
    state = fold_events(run_dir / "events.jsonl", pid=pid, host=run.get("host"),
                        alive=alive, now=now)
    return replace(state, status="queued") if pid is None and state.status == "running" \
        else state


def in_flight(workspace: Path, *, now: float | None = None
              ) -> Iterator[tuple[Path, dict[str, Any], RunState]]:
    """(run_dir, run.json, state) of every run folder without an `end` event: running,
    queued or lost. Only the tail of each events.jsonl is read for folders that ended."""
    root = Path(workspace) / "runs"
    try:
        dirs = sorted(d for d in root.iterdir() if (d / "run.json").is_file())
    except OSError:
        return
    for d in dirs:
        recent = tail_lines(d / "events.jsonl", max_bytes=TAIL_BYTES)
        if fold_events(recent, alive=False).status in TERMINAL:
            continue
        try:
            run = read_run_json(d)
        except (OSError, ValueError):
            continue  # a folder being created, or broken: ingest reports those
        state = fold_run_folder(d, run=run, now=now)
        if state.status not in TERMINAL:
            yield d, run, state


def read_run_json(run_dir: Path) -> dict[str, Any]:
    data = json.loads((Path(run_dir) / "run.json").read_text())
    if not isinstance(data, dict):
        raise ValueError(f"{run_dir}/run.json is not a JSON object")
    return data


def _unended_status(f: Mapping[str, Any], pid: int | None, host: str | None,
                    alive: bool | None, now: float) -> str:
    last = f.get("last")
    fresh = last is not None and now - last <= STALE_S
    if alive is None:
        if pid is None:  # no process known: the runner has not started, or cannot say
            return ("running" if f.get("started") is not None else "queued") \
                if fresh else "lost"
        alive = _alive(pid, host)
    return "running" if fresh and alive else "lost"


def _alive(pid: int, host: str | None) -> bool:
    if host and host != socket.gethostname():
        return True  # not checkable from here: the heartbeat's age decides
    from engine.procs import pid_alive

    return pid_alive(pid)


def _lines(path: Path) -> list[str]:
    try:
        return path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return []


def _number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _int(x: Any) -> int | None:
    try:
        return None if x is None else int(x)
    except (TypeError, ValueError):
        return None


def _float(x: Any) -> float | None:
    try:
        return None if x is None else float(x)
    except (TypeError, ValueError):
        return None
