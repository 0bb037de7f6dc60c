"""One event fold (engine.run_state): the same events.jsonl — finished, cancelled, failed,
killed (no end, dead pid, stale heartbeat), truncated mid-line, running — read by every
consumer (the fold, ingest into a real store, the CLI follower and its bar, the TUI's
Jobs model and progress line) gives the same status and progress. Runs in flight are
listed from their folders by `logg-engine runs ls` and the TUI's Runs screen."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from _runfolders import make_run_folder
from _tui_stores import settle
from fakes import make_fake_dataset

from engine.cli.progress import run_bar
from engine.procs import pid_alive
from engine.run_state import STALE_S, fold_events, fold_run_folder
from engine.runs.executor import follow
from engine.store.ingest import ingest_all
from engine.store.reader import query_df
from logg_tui.jobs import Job, JobManager
from logg_tui.screens.jobs import jobs_rows, progress_line

CLI = [sys.executable, "-c", "from engine.cli import main; main()"]
DEAD = 999_999_999  # above pid_max: never a live process
# scenario → (status, done, total, error) every consumer must report
EXPECT = {
    "finished": ("finished", 4.0, 4.0, None),
    "cancelled": ("cancelled", 2.0, 4.0, "cancelled (SIGTERM): stopped during training"),
    "failed": ("failed", 2.0, 4.0, "SpecError: no test split"),
    "killed": ("lost", 2.0, 4.0, None),
    "truncated": ("lost", 2.0, 4.0, None),
    "running": ("running", 2.0, 4.0, None),
}


def events(scenario: str, now: float, pid: int | None) -> str:
    """events.jsonl text as the runner writes it (EventLog), ending per scenario."""
    t = now - 30
    evs = [{"t": t - 1, "event": "queued", "run_id": scenario},
           {"t": t, "event": "start", "what": f"ridge {scenario}", "pid": pid,
            "host": socket.gethostname()},
           {"t": t + 1, "event": "start", "total": 4, "unit": "rows", "what": "ridge"},
           {"t": t + 2, "event": "progress", "done": 1, "total": 4, "loss": 0.9},
           {"t": t + 3, "event": "metric", "step": 0, "name": "val_r2", "value": 0.5,
            "split": "val"},
           {"t": t + 4, "event": "log", "message": "half way"},
           {"t": t + 5, "event": "progress", "done": 2, "total": 4, "loss": 0.7}]
    beat = now - 2 * STALE_S if scenario == "killed" else now - 1
    evs.append({"t": beat, "event": "heartbeat", "rss_mb": 50.0})
    if scenario == "finished":
        evs.append({"t": now, "event": "progress", "done": 4, "total": 4, "loss": 0.5})
    status, error = EXPECT[scenario][0], EXPECT[scenario][3]
    if scenario in ("finished", "cancelled", "failed"):
        evs.append({"t": now, "event": "end", "status": status, "error": error,
                    "peak_rss_mb": 60.0})
    text = "".join(json.dumps(e) + "\n" for e in evs)
    if scenario == "truncated":  # SIGKILLed in the middle of writing a line
        text += f'{{"t": {now:f}, "event": "progress", "done": 3, "to'
    return text


def run_folder(ws: Path, scenario: str, pid: int) -> Path:
    d = ws / "runs" / f"ridge-{scenario}"
    d.mkdir(parents=True)
    now = time.time()
    (d / "run.json").write_text(json.dumps({
        "run_id": d.name, "model": "ridge", "preset": "ridge-fixed", "params": {"alpha": 1.0},
        "dataset": {"name": "tiny", "path": "/data/tiny", "fingerprint": "fp-fold"},
        "train_size": 4, "noise_level": 1.0, "seed": 0, "test_split": "test",
        "host": socket.gethostname(), "pid": pid, "created": now - 31}))
    (d / "events.jsonl").write_text(events(scenario, now, pid))
    return d


@pytest.fixture
def sleeper():
    """A live process standing in for a running worker."""
    proc = subprocess.Popen(["sleep", "120"])
    yield proc
    proc.kill()
    proc.wait()


@pytest.fixture
def exited():
    """A launcher / worker handle whose process has exited."""
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc


def folders(ws: Path, live_pid: int) -> dict[str, Path]:
    return {s: run_folder(ws, s, live_pid if s == "running" else DEAD) for s in EXPECT}


def test_the_fold_itself(_isolated_workspace, sleeper):
    for scenario, d in folders(_isolated_workspace, sleeper.pid).items():
        s = fold_run_folder(d)
        assert (s.status, s.done, s.total, s.error) == EXPECT[scenario], scenario
        assert s.unit == "rows" and s.messages == ("half way",)
        assert s.metrics["val_r2"] == 0.5 and s.history[0][2:4] == ("val_r2", 0.5)
        assert s.pid == (sleeper.pid if scenario == "running" else DEAD)
    # lines, a path and a pid given explicitly agree; a live pid with a stale heartbeat is
    # lost too (hung), and without any pid the heartbeat's age alone decides
    lines = events("running", 1000.0, None).splitlines()  # a start without a pid
    assert fold_events(lines, now=1000.0).status == "running"
    assert fold_events(lines, now=1000.0 + 2 * STALE_S).status == "lost"
    assert fold_events(lines, pid=sleeper.pid, now=1000.0 + 2 * STALE_S).status == "lost"
    assert fold_events(lines, pid=sleeper.pid, now=1000.0).status == "running"
    assert fold_events(lines, pid=DEAD, now=1000.0).status == "lost"


def test_progress_and_eta_from_events():
    lines = ['{"t": 100.0, "event": "queued"}',
             '{"t": 101.0, "event": "start", "what": "lgbm"}',
             '{"t": 102.0, "event": "start", "total": 400, "unit": "trees"}',
             '{"t": 110.0, "event": "progress", "done": 100, "total": 400, "val_l2": 0.5}',
             'not json']
    p = fold_events(lines, now=110.0)
    assert (p.status, p.done, p.total, p.unit) == ("running", 100, 400, "trees")
    assert p.fraction == 0.25 and p.metrics == {"val_l2": 0.5}
    assert p.eta_s(now=110.0) == pytest.approx(8.0 * 0.75 / 0.25)  # elapsed × (1−f)/f
    p = fold_events(lines + ['{"t": 120, "event": "end", "status": "cancelled",'
                             ' "error": "SIGTERM"}'], now=130.0)
    assert (p.status, p.error, p.eta_s(now=130)) == ("cancelled", "SIGTERM", None)
    assert fold_events(lines[:1], now=100.0).status == "queued"


def test_ingest_into_a_real_store(_isolated_workspace, sleeper):
    ws = _isolated_workspace
    dirs = folders(ws, sleeper.pid)
    report = ingest_all(ws)
    assert sorted(report.ingested) == sorted(d.name for d in dirs.values())
    got = query_df(ws, "SELECT run_id, status, coalesce(error, '') AS error, peak_rss_mb "
                       "FROM runs")
    by_id = {r.run_id: r for r in got.itertuples()}
    for scenario, d in dirs.items():
        row = by_id[d.name]
        assert (row.status, row.error or None) == \
            (EXPECT[scenario][0], EXPECT[scenario][3]), scenario
        assert row.peak_rss_mb == (60.0 if EXPECT[scenario][0] in
                                   ("finished", "cancelled", "failed") else 50.0)
    hist = query_df(ws, "SELECT run_id, name, value FROM metric_history")
    assert len(hist) == len(dirs) and set(hist.value) == {0.5}


def test_the_cli_follower_and_its_bar(_isolated_workspace, sleeper, exited):
    for scenario, d in folders(_isolated_workspace, sleeper.pid).items():
        if scenario == "running":  # follow() waits for a live run: draw the fold instead
            state, drawn = fold_run_folder(d), [fold_run_folder(d)]
        else:
            drawn = []
            state = follow(d, exited, poll_s=0.01, on_state=drawn.append)
        assert (state.status, state.done, state.total, state.error) == EXPECT[scenario]
        bar = run_bar(drawn[-1])
        assert (bar["completed"], bar["total"]) == EXPECT[scenario][1:3], scenario
        assert bar["info"].split()[0] == EXPECT[scenario][0] and "loss=" in bar["info"]


def test_the_tui_jobs_model_and_progress_line(_isolated_workspace, sleeper, exited):
    ws = _isolated_workspace
    mgr = JobManager(ws)
    dirs = folders(ws, sleeper.pid)
    for k, (_scenario, d) in enumerate(dirs.items()):
        mgr.jobs.append(Job(k, ["logg-engine", "run", "ridge"], "ridge", "4", exited,
                            ws / "launcher.log", time.time(), run_dir=d))
    mgr.poll()
    rows = jobs_rows(mgr.jobs)
    for job, row, (scenario, (status, done, total, error)) in zip(mgr.jobs, rows,
                                                                   EXPECT.items()):
        assert (job.status(), job.state.done, job.state.total, job.state.error) == \
            (status, done, total, error), scenario
        assert job.done == (status != "running")
        assert row[3] == status and row[4] == f"{100 * done / total:.0f}%"
        assert f"{status} · rows {done:g}/{total:g}" in progress_line(job)
        log = mgr.log_lines(job)
        assert "[log] half way" in log
        assert (f"[end] {status} {error or ''}".rstrip() in log) == (error is not None
                                                                    or status == "finished")


# ------------------------------------------------------------------ runs in flight

def runs_ls(ws: Path, *args: str) -> list[dict]:
    out = subprocess.run([*CLI, "runs", "ls", "--json", *args], capture_output=True,
                         text=True, timeout=120, env={**os.environ, "LOGG_WORKSPACE": str(ws)})
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


async def tui_statuses(ws: Path) -> dict[str, str]:
    from logg_tui.app import LoggApp
    from logg_tui.widgets.frame_table import FrameTable

    app = LoggApp(ws, readonly=True)
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(pilot)
        table = app.screen.query_one("#runs", FrameTable)
        return {k: str(table.get_cell(k, "status")) for k in table.keys}


@pytest.mark.anyio
@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_a_live_folder_is_listed_beside_the_store(_isolated_workspace, sleeper,
                                                        anyio_backend):
    ws = _isolated_workspace
    make_run_folder(ws, "done-1")
    ingest_all(ws)
    run_folder(ws, "running", sleeper.pid)
    run_folder(ws, "killed", DEAD)
    want = {"done-1": "finished", "ridge-running": "running", "ridge-killed": "lost"}
    assert {r["run_id"]: r["status"] for r in runs_ls(ws)} == want
    assert [r["run_id"] for r in runs_ls(ws, "--status", "running")] == ["ridge-running"]
    assert await tui_statuses(ws) == want


SLOW = ["--set", "n_estimators=100000", "--set", "early_stopping_rounds=0",
        "--set", "learning_rate=0.001"]


def _training_run(ws: Path) -> Path | None:
    """The one run folder whose events.jsonl already reports progress, else None."""
    for events in (ws / "runs").glob("[!.]*/events.jsonl"):
        try:
            if '"progress"' in events.read_text():
                return events.parent
        except OSError:  # renamed into place between the glob and the read
            continue
    return None


@pytest.mark.anyio
@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_a_run_whose_launcher_was_killed_is_listed(_isolated_workspace, monkeypatch,
                                                         anyio_backend):
    """A real worker keeps training after its `logg-engine run` is SIGKILLed: `runs ls`
    and the TUI list it as running (no store exists yet); once the worker is killed too,
    as lost."""
    ws = _isolated_workspace
    monkeypatch.setenv("LOGG_HEARTBEAT_S", "0.5")
    make_fake_dataset(ws / "datasets" / "fake", train_shards=(400, 200), n_val=100,
                      n_test=100, n_pixels=32)
    launcher = subprocess.Popen([*CLI, "run", "lgbm", "--size", "600", "--dataset", "fake",
                                 "--preset", "lgbm-fast", *SLOW],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 90
    while _training_run(ws) is None:  # the folder appears whole (tmp + rename), then trains
        assert time.time() < deadline and launcher.poll() is None
        time.sleep(0.1)
    run_dir = _training_run(ws)
    worker = json.loads((run_dir / "run.json").read_text())["pid"]
    launcher.send_signal(signal.SIGKILL)
    launcher.wait(timeout=10)
    try:
        time.sleep(1.0)
        assert pid_alive(worker) and not (ws / "results.duckdb").exists()
        (row,) = runs_ls(ws)
        assert (row["run_id"], row["status"], row["model"], row["train_size"]) == \
            (run_dir.name, "running", "lgbm", 600)
        assert await tui_statuses(ws) == {run_dir.name: "running"}
    finally:
        os.killpg(worker, signal.SIGKILL)
    deadline = time.time() + 10
    while pid_alive(worker):
        assert time.time() < deadline
        time.sleep(0.05)
    assert [r["status"] for r in runs_ls(ws)] == ["lost"]
    assert fold_run_folder(run_dir).status == "lost"
