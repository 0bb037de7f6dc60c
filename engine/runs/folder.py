"""The run folder `<ws>/runs/<run_id>/`: run.json, the append-only events.jsonl (with a
heartbeat thread). Its writers (engine.events.EventLog, engine.atomic.write_json) live in
the base layer: the data-parallel trainers' workers (engine.models) write the same files.

Why files and not the store: DuckDB allows one writer; a training process only ever writes
its own folder, and `ingest` copies it into the store afterwards (docs/dev-contracts.md,
Run folder)."""

from __future__ import annotations

import json
import secrets
import threading
import time
from pathlib import Path
from typing import Any

from engine.atomic import write_json
from engine.events import EventLog
from engine.paths import runs_dir

HEARTBEAT_S = 5.0

# The old name of engine.atomic.write_json, kept for callers on other branches.
write_json_atomic = write_json


def new_run_id(model: str) -> str:
    """`<model>-<YYYYmmdd-HHMMSS>-<4 hex>` (UTC)."""
    return f"{model}-{time.strftime('%Y%m%d-%H%M%S', time.gmtime())}-{secrets.token_hex(2)}"


def read_run_json(run_dir: Path) -> dict[str, Any]:
    return json.loads((Path(run_dir) / "run.json").read_text())


def update_run_json(run_dir: Path, **fields: Any) -> dict[str, Any]:
    data = read_run_json(run_dir)
    data.update(fields)
    write_json(Path(run_dir) / "run.json", data)
    return data


def create_run_folder(workspace: Path, spec: Any, *, dataset: dict[str, Any],
                      prov: dict[str, Any], resume_from: Path | None = None) -> Path:
    """Make `runs/<run_id>/` with checkpoints/, run.json and a first `queued` event. With
    `resume_from` (a dead run of the same key, engine.runs.resume), its checkpoints are
    copied in first and run.json names it in `resumed_from`."""
    root = runs_dir(Path(workspace))
    root.mkdir(parents=True, exist_ok=True)
    while True:
        run_id = new_run_id(spec.model)
        run_dir = root / run_id
        try:
            run_dir.mkdir()
            break
        except FileExistsError:
            continue
    (run_dir / "checkpoints").mkdir()
    if resume_from is not None:
        from engine.runs.resume import adopt_checkpoints

        adopt_checkpoints(resume_from, run_dir)
    doc = {"run_id": run_id, "model": spec.model, "preset": spec.preset,
           "config_hash": spec.config_hash(), "params": dict(spec.params),
           "spec": spec.to_json(), "dataset": dataset, "train_size": spec.train_size,
           "noise_level": spec.noise_level, "seed": spec.seed, "test_split": spec.test_split,
           "val_split": spec.val_split, "device": spec.device, "executor": spec.executor,
           **prov, "pid": None, "created": time.time(),
           **({"resumed_from": Path(resume_from).name} if resume_from is not None else {})}
    # the `queued` event first: a folder is found by its run.json (the TUI, in_flight), and
    # a run.json without events folds as a stale, pid-less run, i.e. `lost`
    EventLog(run_dir / "events.jsonl")("queued", run_id=run_id)
    write_json(run_dir / "run.json", doc)
    return run_dir


class Heartbeat:
    """A daemon thread writing `heartbeat` (with current RSS) every `interval` seconds:
    ingest calls a run `lost` when both its process and its heartbeat are gone."""

    def __init__(self, log: EventLog, interval: float = HEARTBEAT_S) -> None:
        self.log, self.interval = log, float(interval)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="heartbeat", daemon=True)

    def start(self) -> Heartbeat:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2 * self.interval)

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            self.log("heartbeat", rss_mb=current_rss_mb(), peak_rss_mb=peak_rss_mb())


def peak_rss_mb() -> float:
    """Peak resident memory of this process (ru_maxrss is KiB on Linux)."""
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def current_rss_mb() -> float | None:
    try:
        import psutil

        return psutil.Process().memory_info().rss / 2 ** 20
    except Exception:  # psutil missing or the process table unreadable
        return None


