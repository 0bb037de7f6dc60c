"""Distributed LightGBM (`run lgbm --workers N`, engine.models.lgbm_distributed) on real
LightGBM, real Ray Train and the real tiny pfsspec dataset.

The oracle is the single-process path: the worker shards concatenate to exactly the
single-process training matrix, and with bagging off the 2-worker model is the SAME model
(same bins, same per-tree features, exact histogram sums), so its test predictions equal
the single-process ones. Tests that start Ray are marked `ray` (and `slow`: Ray Train
start-up alone is tens of seconds on 2 shared cores); they share one local Ray."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from engine.errors import RunError
from engine.io.dataset import Dataset
from engine.models.base import NoisySplitSource
from engine.models.lgbm_adapter import LGBMAdapter
from engine.models.lgbm_distributed import (ShardSource, bin_sample_indices, matrix_rows,
                                            shard_range)
from engine.models.contract import TrainContext

CLI = [sys.executable, "-c", "from engine.cli import main; main()"]
# lgbm-fast, few trees, one thread per worker; bagging off = the bit-identical regime;
# bin_construct_sample_cnt < 1000 rows, so the bins come from LightGBM's row sample
FAST = {**LGBMAdapter.presets["lgbm-fast"], "n_estimators": 40, "n_jobs": 1,
        "bagging_fraction": 1.0, "bagging_freq": 0, "bin_construct_sample_cnt": 300}


# ------------------------------------------------------------------ shards (no Ray)
@pytest.mark.parametrize("copies,workers", [(1, 2), (2, 3)])
def test_shards_concatenate_to_the_single_process_matrix(tiny_dataset, copies, workers):
    with Dataset(tiny_dataset) as ds:
        split = ds.train(1000)
        whole = NoisySplitSource(split, 1.0, 7, copies=copies)
        X = np.concatenate(list(whole.chunks(256)))
        total = split.n_rows * copies
        bounds = [shard_range(total, workers, r) for r in range(workers)]
        assert bounds[0][0] == 0 and bounds[-1][1] == total
        assert all(a[1] == b[0] for a, b in zip(bounds, bounds[1:]))
        shards = [ShardSource(split, 1.0, 7, copies, lo, hi) for lo, hi in bounds]
        # odd chunk size: chunks never line up with the shard or noise-block borders
        parts = [np.concatenate(list(s.chunks(97))) for s in shards]
        assert [len(p) for p in parts] == [hi - lo for lo, hi in bounds]
        np.testing.assert_array_equal(np.concatenate(parts), X)
        np.testing.assert_array_equal(np.concatenate([s.labels() for s in shards]),
                                      whole.labels())
        assert all(s.n_features == X.shape[1] for s in shards)


def test_sampled_rows_are_the_matrix_rows(tiny_dataset):
    """The rows the shared bins are built from: bit-identical to the same rows of the
    matrix (noise drawn per block, read row runs only)."""
    with Dataset(tiny_dataset) as ds:
        split = ds.train(1000)
        X = np.concatenate(list(NoisySplitSource(split, 0.5, 3, copies=2).chunks(500)))
        rows = np.sort(np.random.default_rng(0).choice(len(X), 300, replace=False))
        rows = np.union1d(rows, [0, 999, 1000, 1023, 1024, 1999])  # copy + block borders
        np.testing.assert_array_equal(matrix_rows(split, 0.5, 3, 2, rows), X[rows])
        params = LGBMAdapter().build(FAST).dataset_params()
        sample = bin_sample_indices(2000, params)
        assert len(sample) == 300 and np.all(np.diff(sample) > 0) and sample[-1] < 2000
        np.testing.assert_array_equal(bin_sample_indices(250, params), np.arange(250))


# --------------------------------------------------------------------- on Ray Train
def _fit(ds: Dataset, run_dir: Path, workers: int, params: dict, stop=None):
    run_dir.mkdir(parents=True, exist_ok=True)
    adapter = LGBMAdapter()
    kwargs = {} if stop is None else {"should_stop": stop}
    ctx = TrainContext(train=ds.train(1000), val=ds.split("val"), noise_level=1.0, seed=0,
                       run_dir=run_dir, dataset_root=ds.root, workers=workers,
                       dataset_fingerprint=f"distributed-test-{workers}", **kwargs)
    t0 = time.perf_counter()
    est = adapter.train(adapter.build(params), ctx)
    return est, time.perf_counter() - t0


def _r2(y, p):
    return 1 - np.sum((y - p) ** 2) / np.sum((y - y.mean()) ** 2)


@pytest.mark.ray
def test_two_workers_give_the_single_process_model(tiny_dataset, tmp_path, ray_cluster):
    """Oracle: 2 workers vs 1 process, bagging off. Observed: predictions bit-identical
    (max |diff| = 0, R² 0.175 both; also with bin_construct_sample_cnt ≥ rows, R² 0.202).
    Why exact: both bin against the same edges (shared_bins re-uses LightGBM's own sample
    of the whole matrix), feature_fraction draws the same features per tree (same seed),
    and data_parallel sums double histograms of float32 gradients, which is exact in any
    order, so every split and leaf value is the same. Asserted at 1e-9 to allow a last-bit
    reordering on other platforms; a different split would move predictions by ≫ 1e-3."""
    with Dataset(tiny_dataset) as ds:
        one, t1 = _fit(ds, tmp_path / "w1", 1, FAST)
        two, t2 = _fit(ds, tmp_path / "w2", 2, FAST)
        test = ds.split("test")
        X, y = test.noisy(1.0), test.log_g
        p1, p2 = one.predict(X), two.predict(X)
    print(f"\n1 worker {t1:.1f} s R2={_r2(y, p1):.4f}; 2 workers {t2:.1f} s "
          f"R2={_r2(y, p2):.4f}; max|diff|={np.abs(p1 - p2).max():.3g}")
    np.testing.assert_allclose(p2, p1, rtol=0, atol=1e-9)
    assert _r2(y, p1) > 0.05                       # a model, not a constant
    assert two.best_iteration_ == one.best_iteration_
    assert two.workers_ == 2 and two.shard_rows_ == [500, 500] and not two.stopped_
    np.testing.assert_allclose(two.evals_result_["l2"], one.evals_result_["l2"], rtol=1e-12)
    # rank 0's progress events landed in the run's events.jsonl, one per tree
    events = [json.loads(x) for x in (tmp_path / "w2" / "events.jsonl").read_text().split("\n")
              if x]
    done = [e["done"] for e in events if e["event"] == "progress"]
    assert done == list(range(1, len(two.evals_result_["l2"]) + 1))
    assert done[-1] >= two.best_iteration_
    assert all(e["total"] == FAST["n_estimators"] for e in events if e["event"] == "progress")
    # the model the runner will save: truncated at the best iteration, reloads exactly
    LGBMAdapter().save(two, tmp_path / "ck")
    again = LGBMAdapter().load(tmp_path / "ck")
    np.testing.assert_array_equal(again.predict(X), p2)


@pytest.mark.ray
@pytest.mark.slow
def test_stop_ends_all_workers_together(tiny_dataset, tmp_path, ray_cluster):
    """should_stop() already True: the driver writes STOP, rank 0 sees it at the first
    check (iteration 1) and all workers leave lightgbm.train there (none hangs)."""
    with Dataset(tiny_dataset) as ds:
        est, _ = _fit(ds, tmp_path / "run", 2, {**FAST, "n_estimators": 500},
                      stop=lambda: True)
    assert est.stopped_ and est.booster_.current_iteration() == 1
    assert (tmp_path / "run" / "STOP").exists()


@pytest.mark.ray
@pytest.mark.slow
def test_worker_error_surfaces_as_run_error(tiny_dataset, tmp_path, ray_cluster):
    """A LightGBM error inside the workers comes back as RunError with LightGBM's own
    message, not Ray's wrapper."""
    with Dataset(tiny_dataset) as ds:
        with pytest.raises(RunError) as info:
            _fit(ds, tmp_path / "run", 2, {**FAST, "max_bin": 1})
    text = str(info.value)
    assert "LightGBMError" in text and "max_bin" in text, text
    assert "Training failed due to worker errors" not in text


# ------------------------------------------------------------------------- the CLI
def _cli(ws: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "LOGG_WORKSPACE": str(ws), "RAY_USAGE_STATS_ENABLED": "0",
           "OMP_NUM_THREADS": "1"}
    out = subprocess.run([*CLI, *args], capture_output=True, text=True, env=env, timeout=400)
    assert out.returncode == 0, f"exit {out.returncode}\n{out.stdout}\n{out.stderr}"
    return out


@pytest.mark.ray
@pytest.mark.slow
def test_cli_run_with_two_workers_lands_in_the_store(tiny_dataset, _isolated_workspace):
    """`logg-engine run lgbm --workers 2` as a real subprocess (its own private Ray):
    finishes, is in the store with workers=2, and predicts exactly what `--workers 1`
    predicts for the same spec (bagging off)."""
    from engine.store.reader import query_df

    ws = _isolated_workspace
    common = ["run", "lgbm", "--size", "1000", "--dataset", str(tiny_dataset),
              "--preset", "lgbm-fast", "--set", "n_estimators=30", "--set", "n_jobs=1",
              "--set", "bagging_freq=0"]
    _cli(ws, *common, "--workers", "2")
    _cli(ws, *common)
    runs = {json.loads((d / "run.json").read_text())["spec"]["workers"]: d
            for d in (ws / "runs").iterdir()}
    assert sorted(runs) == [1, 2]
    info = json.loads((runs[2] / "run.json").read_text())
    assert info["spec"]["workers"] == 2
    m2 = json.loads((runs[2] / "metrics.json").read_text())
    m1 = json.loads((runs[1] / "metrics.json").read_text())
    assert m2["extra"]["model"]["workers"] == 2 and m1["extra"]["model"]["workers"] == 1
    p2 = pd.read_parquet(runs[2] / "predictions.parquet")
    p1 = pd.read_parquet(runs[1] / "predictions.parquet")
    np.testing.assert_allclose(p2["y_pred"], p1["y_pred"], rtol=0, atol=1e-9)
    assert m2["overall"]["r2"] == pytest.approx(m1["overall"]["r2"], abs=1e-9)
    df = query_df(ws, "SELECT run_id, status FROM runs WHERE run_id = ?",
                  [info["run_id"]])
    assert list(df.status) == ["finished"]
    events = (runs[2] / "events.jsonl").read_text()
    assert '"progress"' in events and '"status": "finished"' in events


@pytest.mark.ray
@pytest.mark.slow
def test_sigterm_cancels_a_distributed_run(tiny_dataset, _isolated_workspace, monkeypatch):
    """The real cancel path: SIGTERM to the run's process group (executor.cancel) while
    two workers train; the run ends `cancelled` in its folder and the store, by itself
    (exit 3, no SIGKILL). The private Ray dies with the group, so this goes through the
    driver's stop grace (STOP_GRACE_S), not the workers' STOP check (tested above)."""
    from engine.runs.executor import EventFollower, LocalExecutor, cancel
    from engine.runs.folder import create_run_folder
    from engine.runs.provenance import provenance
    from engine.runs.scaling import dataset_info
    from engine.runs.spec import build_spec
    from engine.store.reader import query_df

    monkeypatch.setenv("LOGG_HEARTBEAT_S", "0.5")
    monkeypatch.setenv("RAY_USAGE_STATS_ENABLED", "0")
    ws = _isolated_workspace
    spec = build_spec("lgbm", workspace=ws, size=1000, dataset=str(tiny_dataset),
                      preset="lgbm-fast", workers=2,
                      overrides=["n_estimators=100000", "early_stopping_rounds=0",
                                 "learning_rate=0.001", "n_jobs=1"])
    run_dir = create_run_folder(ws, spec, dataset=dataset_info(spec.dataset_path),
                                prov=provenance())
    proc = LocalExecutor().launch(run_dir)
    tail, deadline, seen = EventFollower(run_dir), time.time() + 240, None
    while seen is None and time.time() < deadline:
        seen = next((e for e in tail.poll() if e["event"] == "progress"), None)
        time.sleep(0.1)
    assert seen is not None, (run_dir / "stdout.log").read_text()[-3000:]
    t0 = time.perf_counter()
    code = cancel(proc, grace_s=60)
    took = time.perf_counter() - t0
    assert code == 3, (run_dir / "stdout.log").read_text()[-3000:]
    events = [json.loads(x) for x in (run_dir / "events.jsonl").read_text().splitlines()]
    ends = [e for e in events if e["event"] == "end"]
    assert len(ends) == 1 and ends[0]["status"] == "cancelled", (
        ends, (run_dir / "stdout.log").read_text()[-3000:])
    assert took < 60                                   # ended by itself, not SIGKILLed
    assert not (run_dir / "metrics.json").exists()
    df = query_df(ws, "SELECT status FROM runs WHERE run_id = ?", [run_dir.name])
    assert list(df.status) == ["cancelled"]
