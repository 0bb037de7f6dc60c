"""The run lifecycle end to end: `logg-engine run` in a real worker subprocess on a real
pfsspec dataset, checked against an sklearn oracle and the store."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import Ridge
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from engine.io.dataset import Dataset
from fakes import make_fake_dataset

CLI = [sys.executable, "-c", "from engine.cli import main; main()"]


@pytest.fixture
def ws(_isolated_workspace):
    make_fake_dataset(_isolated_workspace / "datasets" / "fake", train_shards=(500, 300),
                      n_val=150, n_test=200, n_pixels=64)
    return _isolated_workspace


def cli(*args, ws=None, check=True):
    env = dict(os.environ)
    if ws is not None:
        env["LOGG_WORKSPACE"] = str(ws)
    out = subprocess.run([*CLI, *args], capture_output=True, text=True, env=env, timeout=120)
    if check and out.returncode != 0:
        raise AssertionError(f"exit {out.returncode}\n{out.stdout}\n{out.stderr}")
    return out


def only_run(ws):
    (run_dir,) = list((ws / "runs").iterdir())
    return run_dir


def test_ridge_run_equals_sklearn_on_the_same_noisy_data(ws):
    out = cli("run", "ridge", "--size", "700", "--dataset", "fake", "--seed", "5",
              "--preset", "ridge-fixed", "--set", "alpha=300", ws=ws)
    run_dir = only_run(ws)
    assert run_dir.name.startswith("ridge-") and "finished" in out.stdout
    # oracle: sklearn pipeline on the same seeded training realisation
    ds = Dataset(ws / "datasets" / "fake")
    train = ds.train(700)
    X = np.concatenate([x for _s, _e, x, _y in train.noisy_chunks(1.0, 5, 97)])
    ref = make_pipeline(StandardScaler(), Ridge(alpha=300.0)).fit(X.astype(np.float64),
                                                                  train.log_g)
    test = ds.split("test")
    expect = ref.predict(test.read("noisy").astype(np.float64))  # the stored frozen noise
    pred = pd.read_parquet(run_dir / "predictions.parquet")
    np.testing.assert_allclose(pred["y_pred"], expect, rtol=1e-6)
    np.testing.assert_array_equal(pred["y_true"], test.log_g)
    assert list(pred.columns[:3]) == ["idx", "y_true", "y_pred"]
    m = json.loads((run_dir / "metrics.json").read_text())
    r2 = 1 - np.sum((test.log_g - expect) ** 2) / np.sum((test.log_g - test.log_g.mean()) ** 2)
    assert m["overall"]["r2"] == pytest.approx(r2, rel=1e-6)
    assert m["eval_key"]["realisation"] == "stored" and m["extra"]["peak_rss_mb"] > 0
    assert m["extra"]["model"]["alpha"] == 300.0
    ds.close()


def test_run_json_events_and_store(ws):
    cli("run", "ridge", "--size", "500", "--dataset", "fake", ws=ws)
    run_dir = only_run(ws)
    info = json.loads((run_dir / "run.json").read_text())
    for key in ("run_id", "model", "preset", "config_hash", "params", "dataset", "train_size",
                "noise_level", "seed", "test_split", "git", "versions", "host", "pid",
                "command", "created"):
        assert key in info, key
    assert info["dataset"]["fingerprint"] == Dataset(ws / "datasets" / "fake").fingerprint()
    assert info["command"][1:4] == ["run", "ridge", "--size"] or "run" in info["command"]
    assert info["versions"]["lightgbm"] and "sha" in info["git"]
    events = [json.loads(line) for line in (run_dir / "events.jsonl").read_text().splitlines()]
    names = [e["event"] for e in events]
    assert names[0] == "queued" and "start" in names and names[-1] == "end"
    assert events[-1]["status"] == "finished" and events[-1]["error"] is None
    curve = [e for e in events if e["event"] == "metric" and e["name"] == "val_r2"]
    assert len(curve) == 13  # the paper's α path, scored on the validation split
    pred = [e for e in events if e.get("stage") == "predict"]    # a bar for the test rows
    n_test = json.loads((run_dir / "metrics.json").read_text())["extra"]["n_test"]
    assert pred and pred[-1]["done"] == pred[-1]["total"] == n_test
    assert any(e["event"] == "start" and str(e.get("what", "")).startswith("predicting")
               for e in events)
    m = json.loads((run_dir / "metrics.json").read_text())
    best = max(m["extra"]["model"]["alpha_curve"], key=lambda r: r["val_r2"])["alpha"]
    assert m["extra"]["model"]["alpha"] == best
    from engine.store.reader import query_df

    row = query_df(ws, "SELECT status, config_hash, train_size FROM runs").iloc[0]
    assert row.status == "finished" and row.config_hash == info["config_hash"]
    assert int(row.train_size) == 500
    hist = query_df(ws, "SELECT count(*) AS n FROM metric_history WHERE name = 'val_r2'")
    assert int(hist.n[0]) == 13


def test_lgbm_run_caches_binned_dataset(ws):
    args = ("run", "lgbm", "--size", "800", "--dataset", "fake", "--preset", "lgbm-fast",
            "--set", "n_estimators=40")
    cli(*args, ws=ws)
    cache = list((ws / "datasets" / "fake" / ".cache").glob("lgbm_*.bin"))
    assert len(cache) == 1
    stamp = cache[0].stat().st_mtime_ns
    cli(*args, ws=ws)
    runs = sorted((ws / "runs").iterdir())
    metrics = [json.loads((r / "metrics.json").read_text()) for r in runs]
    assert [m["extra"]["model"]["cache_hit"] for m in metrics] == [False, True]
    assert cache[0].stat().st_mtime_ns == stamp
    assert metrics[0]["overall"]["r2"] == metrics[1]["overall"]["r2"]
    assert (runs[0] / "checkpoints" / "lgbm_model.txt").is_file()


@pytest.mark.parametrize("args, needle", [
    (["--size", "10x"], "bad size"),
    (["--size", "5k"], "asked for 5000 training rows"),
    (["--preset", "nope"], "unknown preset"),
    (["--set", "alhpa=3"], "unknown parameter 'alhpa'"),
    (["--dataset", "nowhere"], "no dataset 'nowhere'"),
])
def test_bad_input_exits_2_without_traceback(ws, args, needle):
    base = ["run", "ridge", "--size", "500", "--dataset", "fake"]
    out = cli(*base, *args, ws=ws, check=False)
    assert out.returncode == 2, out.stderr
    assert needle in out.stderr and "Traceback" not in out.stderr + out.stdout
    assert "fix:" in out.stderr
    assert not (ws / "runs").exists()


def test_detach_returns_the_run_id(ws):
    out = cli("run", "ridge", "--size", "500", "--dataset", "fake", "--detach", ws=ws)
    run_id = out.stdout.strip()
    run_dir = ws / "runs" / run_id
    assert run_dir.is_dir()
    from engine.runs.executor import EventFollower
    import time

    deadline, ended = time.time() + 60, None
    tail = EventFollower(run_dir)
    while time.time() < deadline and ended is None:
        ended = next((e for e in tail.poll() if e["event"] == "end"), None)
        time.sleep(0.2)
    assert ended and ended["status"] == "finished"


def test_ridge_run_on_the_generated_tiny_dataset(_isolated_workspace, tiny_dataset):
    """End to end on the physics generator's `tiny` set (4096 pixels, stored frozen test
    noise, CRLB columns): the run scores every test spectrum and the Fisher ceiling."""
    ws = _isolated_workspace
    root = ws / "datasets" / "tiny"  # shards linked, so caches land in this workspace
    for shard in tiny_dataset.glob("*/dataset.h5"):
        (root / shard.parent.name).mkdir(parents=True)
        (root / shard.parent.name / "dataset.h5").symlink_to(shard)
    (root / "dataset.json").write_bytes((tiny_dataset / "dataset.json").read_bytes())
    cli("run", "ridge", "--size", "1k", "--dataset", "tiny", "--preset", "ridge-fixed",
        ws=ws)
    run_dir = only_run(ws)
    test = Dataset(root).split("test")
    pred = pd.read_parquet(run_dir / "predictions.parquet")
    assert len(pred) == test.n_rows and pred["y_pred"].notna().all()
    np.testing.assert_array_equal(pred["y_true"], test.log_g)
    m = json.loads((run_dir / "metrics.json").read_text())
    r2 = 1 - np.sum((pred.y_true - pred.y_pred) ** 2) / np.sum((pred.y_true - pred.y_true.mean()) ** 2)
    assert m["overall"]["r2"] == pytest.approx(r2, rel=1e-9)
    assert m["eval_key"]["realisation"] == "stored"
    if pred["crlb_log_g"].notna().any():
        assert any(b.get("r2_max") is not None for b in m["bins"])
