"""Reliability with real processes and the real DuckDB file: SIGKILL mid-training,
SIGTERM (cancel), two runs ending together."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from engine.runs.executor import EventFollower, LocalExecutor, cancel, follow
from engine.runs.folder import create_run_folder
from engine.runs.provenance import provenance
from engine.runs.scaling import dataset_info
from engine.runs.spec import build_spec
from engine.store.reader import query_df

# A LightGBM run that would take minutes: tiny learning rate, no early stopping.
SLOW = ["n_estimators=100000", "early_stopping_rounds=0", "learning_rate=0.001"]


@pytest.fixture
def ws(process_ws):
    return process_ws


def start(ws, model="lgbm", overrides=(), preset=None, size=600):
    spec = build_spec(model, workspace=ws, size=size, dataset="fake", preset=preset,
                      overrides=overrides)
    run_dir = create_run_folder(ws, spec, dataset=dataset_info(spec.dataset_path),
                                prov=provenance())
    return run_dir, LocalExecutor().launch(run_dir)


def wait_for(run_dir, event, timeout=60.0):
    tail, deadline = EventFollower(run_dir), time.time() + timeout
    while time.time() < deadline:
        for ev in tail.poll():
            if ev["event"] == event:
                return ev
        time.sleep(0.05)
    raise AssertionError(f"no {event!r} event in {timeout}s: "
                         f"{(run_dir / 'stdout.log').read_text()}")


def store_status(ws, run_id):
    df = query_df(ws, "SELECT status, error FROM runs WHERE run_id = ?", [run_id])
    return None if df.empty else (df.status[0], df.error[0])


def test_sigkill_mid_training_leaves_store_intact_and_run_lost(ws):
    done_dir, proc = start(ws, "ridge", size=400)
    assert follow(done_dir, proc).status == "finished"  # the store holds one run
    run_dir, proc = start(ws, overrides=SLOW, preset="lgbm-fast")
    wait_for(run_dir, "progress")
    os.killpg(proc.pid, signal.SIGKILL)
    assert proc.wait(timeout=10) == -signal.SIGKILL
    lines = (run_dir / "events.jsonl").read_text().splitlines()
    assert all(json.loads(x)["event"] != "end" for x in lines)
    out = subprocess.run([sys.executable, "-c", "from engine.cli import main; main()",
                          "ingest"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert store_status(ws, run_dir.name)[0] in ("lost", "failed")
    assert store_status(ws, done_dir.name)[0] == "finished"  # earlier run untouched
    n = query_df(ws, "SELECT count(*) AS n FROM predictions WHERE run_id = ?",
                 [done_dir.name])
    assert int(n.n[0]) == 100


def test_sigterm_cancels_cleanly(ws):
    run_dir, proc = start(ws, overrides=SLOW, preset="lgbm-fast")
    wait_for(run_dir, "heartbeat")
    wait_for(run_dir, "progress")
    code = cancel(proc, grace_s=30)
    assert code == 3  # the worker's own "cancelled" exit, not a SIGKILL
    end = json.loads((run_dir / "events.jsonl").read_text().splitlines()[-1])
    assert end["event"] == "end" and end["status"] == "cancelled"
    assert "SIGTERM" in end["error"]
    assert store_status(ws, run_dir.name)[0] == "cancelled"
    assert not (run_dir / "metrics.json").exists()


def test_two_runs_ending_together_are_both_ingested(ws):
    a = start(ws, "ridge", size=600)
    b = start(ws, "ridge", size=600, preset="ridge-fixed")
    for run_dir, proc in (a, b):
        assert follow(run_dir, proc).status == "finished"
        proc.wait(timeout=30)
    for run_dir, _ in (a, b):
        assert store_status(ws, run_dir.name) == ("finished", None)
    got = query_df(ws, "SELECT count(DISTINCT run_id) AS n FROM run_metrics")
    assert int(got.n[0]) == 2


def test_failure_is_recorded_with_its_reason(ws):
    """A run whose data vanished after launch ends `failed` with the reason."""
    spec = build_spec("ridge", workspace=ws, size=400, dataset="fake")
    run_dir = create_run_folder(ws, spec, dataset=dataset_info(spec.dataset_path),
                                prov=provenance())
    for f in (ws / "datasets" / "fake").glob("test_*/dataset.h5"):
        f.unlink()
    proc = LocalExecutor().launch(run_dir)
    end = follow(run_dir, proc)
    assert proc.wait(timeout=30) == 1
    assert end.status == "failed" and "test" in end.error
    assert store_status(ws, run_dir.name)[0] == "failed"


def test_ctrl_c_in_the_foreground_cancels_the_worker(ws):
    cmd = [sys.executable, "-c", "from engine.cli import main; main()", "run", "lgbm",
           "--size", "600", "--dataset", "fake", "--preset", "lgbm-fast",
           *[a for kv in SLOW for a in ("--set", kv)]]
    # SIG_DFL: a background shell (nohup … &) starts children with SIGINT ignored
    cli = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                           preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.time() + 60
    while time.time() < deadline and not (ws / "runs").exists():
        time.sleep(0.05)
    (run_dir,) = list((ws / "runs").iterdir())
    wait_for(run_dir, "progress")
    cli.send_signal(signal.SIGINT)
    _out, err = cli.communicate(timeout=60)
    assert cli.returncode == 130, err
    assert "Traceback" not in err and "cancelled" in err
    end = json.loads((run_dir / "events.jsonl").read_text().splitlines()[-1])
    assert end["event"] == "end" and end["status"] == "cancelled"


def test_a_run_folder_is_never_seen_without_its_queued_event(ws, monkeypatch):
    """A new folder is found by its run.json (the TUI's job poll, `in_flight`): by then its
    `queued` event must exist, or a poll in between folds a pid-less run with no events as
    stale, i.e. `lost` (what the TUI's launch test once caught under load, and kept)."""
    import engine.runs.folder as folder
    from engine.run_state import fold_run_folder

    seen = []
    real = folder.write_json

    def spy(path, doc, *a, **k):
        if path.name == "run.json" and doc.get("pid") is None:
            seen.append((path.parent / "events.jsonl").is_file())
        return real(path, doc, *a, **k)

    monkeypatch.setattr(folder, "write_json", spy)
    spec = build_spec("ridge", workspace=ws, size=200, dataset="fake")
    run_dir = create_run_folder(ws, spec, dataset=dataset_info(spec.dataset_path),
                                prov=provenance())
    assert seen == [True]
    assert fold_run_folder(run_dir).status == "queued"
