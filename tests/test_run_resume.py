"""A killed, cancelled or failed ViT run continues from its checkpoint when the same run is
launched again (engine.runs.resume): real worker subprocesses, SIGKILL, real checkpoints;
the oracle is an uninterrupted run of the same spec."""

from __future__ import annotations

import json
import os
import signal
import time

import numpy as np
import pandas as pd
import pytest

from engine.runs.executor import follow, launch_run
from engine.runs.folder import create_run_folder, read_run_json
from engine.runs.provenance import provenance
from engine.runs.resume import adopt_checkpoints, find_resumable
from engine.runs.scaling import dataset_info
from engine.runs.spec import build_spec

# a ViT small enough for seconds per run, long enough (20 epochs) to be killed mid-way
TINY_VIT = ["patch_size=8", "stride=8", "hidden=16", "layers=1", "heads=2", "batch_size=64",
            "epochs=20", "dropout=0.1"]


@pytest.fixture
def ws(process_ws):
    return process_ws


def _spec(ws, seed=0):
    return build_spec("vit", workspace=ws, size=600, dataset="fake", preset="vit-cpu",
                      overrides=TINY_VIT, seed=seed, device="cpu")


def _wait_for(path, timeout=120.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if path.exists():
            return
        time.sleep(0.02)
    raise AssertionError(f"{path} did not appear in {timeout}s")


def _events(run_dir):
    return [json.loads(x) for x in (run_dir / "events.jsonl").read_text().splitlines()]


def _predictions(run_dir):
    return pd.read_parquet(run_dir / "predictions.parquet").sort_values("idx")


def test_a_killed_vit_run_continues_from_its_checkpoint_and_ends_as_an_uninterrupted_one(ws):
    spec = _spec(ws)
    dead, proc = launch_run(ws, spec)
    _wait_for(dead / "checkpoints" / "last.pt")       # the first epoch's checkpoint
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    assert all(ev["event"] != "end" for ev in _events(dead))
    fp = dataset_info(spec.dataset_path)["fingerprint"]
    assert find_resumable(ws, spec, fp) == dead

    again, proc = launch_run(ws, spec)
    assert follow(again, proc).status == "finished"
    proc.wait(timeout=30)
    assert read_run_json(again)["resumed_from"] == dead.name
    events = _events(again)
    logs = " ".join(ev.get("message", "") for ev in events if ev["event"] == "log")
    assert f"continuing from the checkpoint of {dead.name}" in logs
    assert "resumed from last.pt at step" in logs
    first = next(ev for ev in events if ev["event"] == "progress" and "epoch" in ev)
    assert first["done"] > 0                          # it did not start from step 0
    # the dead run is left as it was, and is not offered again
    assert (dead / "checkpoints" / "last.pt").exists()
    assert find_resumable(ws, spec, fp) is None

    fresh, proc = launch_run(ws, spec, resume=False)  # the oracle: never interrupted
    assert follow(fresh, proc).status == "finished"
    proc.wait(timeout=30)
    assert "resumed_from" not in read_run_json(fresh)
    a, b = _predictions(again), _predictions(fresh)
    assert len(a) == 100
    np.testing.assert_allclose(a.y_pred.to_numpy(), b.y_pred.to_numpy(), atol=1e-5)


def _dead_run(ws, spec, *, status, checkpoint=True, resumed_from=None):
    """A run folder as a worker leaves it: `lost` (no end, its pid gone) or ended."""
    prev = None if resumed_from is None else resumed_from
    run_dir = create_run_folder(ws, spec, dataset=dataset_info(spec.dataset_path),
                                prov=provenance(), resume_from=prev)
    doc = read_run_json(run_dir)
    doc["pid"] = 2 ** 22 + 12345                      # no such process
    (run_dir / "run.json").write_text(json.dumps(doc))
    with (run_dir / "events.jsonl").open("a") as f:
        f.write(json.dumps({"t": time.time(), "event": "start", "what": "vit"}) + "\n")
        if status != "lost":
            f.write(json.dumps({"t": time.time(), "event": "end", "status": status}) + "\n")
    if checkpoint:
        (run_dir / "checkpoints" / "last.pt").write_bytes(os.urandom(64))
    time.sleep(0.02)                                  # distinct checkpoint times
    return run_dir


def test_which_run_is_offered(ws):
    spec = _spec(ws)
    fp = dataset_info(spec.dataset_path)["fingerprint"]
    assert find_resumable(ws, spec, fp) is None
    _dead_run(ws, spec, status="finished")            # finished: nothing to continue
    _dead_run(ws, spec, status="lost", checkpoint=False)
    _dead_run(ws, _spec(ws, seed=1), status="lost")   # another key
    assert find_resumable(ws, spec, fp) is None
    assert find_resumable(ws, spec, "0" * 16) is None
    lost = _dead_run(ws, spec, status="lost")
    assert find_resumable(ws, spec, fp) == lost
    cancelled = _dead_run(ws, spec, status="cancelled")   # newer checkpoint wins
    assert find_resumable(ws, spec, fp) == cancelled
    failed = _dead_run(ws, spec, status="failed")     # e.g. a full disk after training
    assert find_resumable(ws, spec, fp) == failed
    # a run that continued the failed one and died: it is the one to continue now
    chained = _dead_run(ws, spec, status="lost", resumed_from=failed)
    assert read_run_json(chained)["resumed_from"] == failed.name
    assert (chained / "checkpoints" / "last.pt").read_bytes() != b""
    assert find_resumable(ws, spec, fp) == chained


def test_only_models_that_resume_are_offered_a_checkpoint(ws):
    spec = build_spec("ridge", workspace=ws, size=600, dataset="fake")
    _dead_run(ws, spec, status="lost")
    run_dir, proc = launch_run(ws, spec)
    assert follow(run_dir, proc).status == "finished"
    proc.wait(timeout=30)
    assert "resumed_from" not in read_run_json(run_dir)


def test_adopted_checkpoints_are_copies(tmp_path):
    old, new = tmp_path / "old", tmp_path / "new"
    (old / "checkpoints").mkdir(parents=True)
    (old / "checkpoints" / "last.pt").write_bytes(b"abc")
    (old / "checkpoints" / ".last.pt.tmp").write_bytes(b"torn")   # a write cut short
    assert adopt_checkpoints(old, new) == ["last.pt"]
    assert (new / "checkpoints" / "last.pt").read_bytes() == b"abc"
    assert sorted(p.name for p in (new / "checkpoints").iterdir()) == ["last.pt"]
    (new / "checkpoints" / "last.pt").write_bytes(b"changed")
    assert (old / "checkpoints" / "last.pt").read_bytes() == b"abc"
