"""Data-parallel SpecViT on Ray Train's TorchTrainer (engine/models/vit/distributed.py).

The oracle: with dropout 0 a 2-worker fit (gloo, CPU) sees the same global batches and the
same noise as the single-process fit and averages the same gradients, so it must end at the
same weights, validation history and test predictions to float precision. Around it: rank 0
writes the run's events and checkpoints, a worker's RunError comes back as itself, a stop
request ends every worker with last.pt written and `--resume` continues from it, and the
CLI run with `--workers 2` lands in the store like any other.

Marked `ray`; skipped when Ray is not installed. Ray Train start-up costs ~20-40 s per fit
on a busy 2-core box: only the oracle and the error test are in the default suite."""

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
import torch

from engine.errors import RunError
from engine.io.dataset import Dataset
from engine.models.vit.adapter import ViTAdapter
from engine.models.contract import TrainContext

pytest.importorskip("ray")
pytest.importorskip("ray.train.torch")

CLI = [sys.executable, "-c", "from engine.cli import main; main()"]
# tiny and fast: 16 tokens of 256 pixels, one block; no dropout so the oracle is exact
PARAMS = dict(patch_size=256, stride=256, hidden=16, layers=1, heads=2, mlp_ratio=2,
              dropout=0.0, attn_dropout=0.0, batch_size=64, epochs=2, lr=3e-3,
              warmup_frac=0.2, seed=1, eval_batch_size=256)
N_TRAIN = 150            # 3 steps an epoch: 64, 64 and 22 rows (uneven 11/11 split)


pytestmark = pytest.mark.usefixtures("torch_one_thread")   # conftest


@pytest.fixture(scope="module")
def data_root(tiny_dataset, tmp_path_factory):
    """The session's tiny dataset with its shards linked into a private folder, so the
    frozen-noise caches written here never touch the shared copy."""
    root = tmp_path_factory.mktemp("vitd") / "tiny"
    for shard in tiny_dataset.glob("*/dataset.h5"):
        (root / shard.parent.name).mkdir(parents=True)
        (root / shard.parent.name / "dataset.h5").symlink_to(shard)
    (root / "dataset.json").write_bytes((tiny_dataset / "dataset.json").read_bytes())
    return root


@pytest.fixture(scope="module")
def ds(data_root):
    with Dataset(data_root) as d:
        yield d


def _ctx(ds, run_dir: Path, workers: int, **kw) -> TrainContext:
    run_dir.mkdir(parents=True, exist_ok=True)
    return TrainContext(train=ds.train(N_TRAIN), val=ds.split("val"), noise_level=1.0, seed=7,
                        run_dir=run_dir, checkpoint_dir=run_dir / "checkpoints", device="cpu",
                        dataset_root=ds.root, workers=workers, **kw)


def _fit(ds, run_dir: Path, workers: int, **kw):
    ad = ViTAdapter()
    params = {**PARAMS, **kw.pop("params", {})}
    t0 = time.perf_counter()
    est = ad.train(ad.build(params), _ctx(ds, run_dir, workers, **kw))
    return est, time.perf_counter() - t0


def _events(run_dir: Path) -> list[dict]:
    return [json.loads(x) for x in (run_dir / "events.jsonl").read_text().splitlines()]


@pytest.mark.ray
def test_two_workers_follow_the_single_process_fit_step_for_step(ds, tmp_path,
                                                                  ray_cluster):
    one, t1 = _fit(ds, tmp_path / "one", 1)
    two, t2 = _fit(ds, tmp_path / "two", 2)
    print(f"\nwall time: 1 process {t1:.1f} s, 2 Ray Train workers {t2:.1f} s")
    assert not two.stopped_ and two.n_params_ == one.n_params_
    for (k, a), b in zip(one.model_.state_dict().items(), two.model_.state_dict().values()):
        torch.testing.assert_close(b, a, atol=1e-5, rtol=1e-5, msg=k)
    for h1, h2 in zip(one.history_, two.history_, strict=True):
        assert h2["train_loss"] == pytest.approx(h1["train_loss"], rel=1e-5)
        assert h2["val_r2"] == pytest.approx(h1["val_r2"], abs=1e-5)
        assert h2["lr"] == pytest.approx(h1["lr"], rel=1e-9)
    assert two.best_epoch_ == one.best_epoch_
    X = ds.split("test").noisy(1.0)
    np.testing.assert_allclose(two.predict(X), one.predict(X), atol=1e-5)
    # rank 0's files: checkpoints as the single-process trainer writes them, events
    ck1, ck2 = tmp_path / "one" / "checkpoints", tmp_path / "two" / "checkpoints"
    for name in ("best.pt", "last.pt"):
        a = torch.load(ck1 / name, weights_only=True)
        b = torch.load(ck2 / name, weights_only=True)
        assert set(a) == set(b), name
        for k in a["model"]:
            torch.testing.assert_close(b["model"][k], a["model"][k], atol=1e-5, rtol=1e-5)
    loop = torch.load(ck2 / "last.pt", weights_only=True)["loop"]
    assert (loop["epoch"], loop["global_step"]) == (2, 6)
    events = _events(tmp_path / "two")
    prog = [e for e in events if e["event"] == "progress"]
    assert prog[-1]["done"] == prog[-1]["total"] == 6
    val_r2 = [e["value"] for e in events if e["event"] == "metric" and e["name"] == "r2"]
    assert val_r2 == pytest.approx([h["val_r2"] for h in one.history_], abs=1e-5)
    assert sum(e["event"] == "start" for e in events) == 1       # rank 0 only


@pytest.mark.ray
def test_a_worker_run_error_comes_back_as_itself(ds, tmp_path, ray_cluster):
    """lr 1e9 with no clipping: the loss leaves the float range within a few steps; every
    rank sees the same all-reduced loss and raises the single-process RunError."""
    with pytest.raises(RunError, match=r"non-finite loss at epoch \d+ step \d+") as info:
        _fit(ds, tmp_path / "run", 2,
             params=dict(lr=1e9, grad_clip=1e30, warmup_frac=0.0, epochs=20))
    assert info.value.key == "loss" and "lower lr" in info.value.hint


def test_workers_for_a_model_without_data_parallel_training_exit_2(_isolated_workspace):
    out = subprocess.run([*CLI, "run", "ridge", "--size", "100", "--workers", "2"],
                         capture_output=True, text=True, timeout=120,
                         env={**os.environ, "LOGG_WORKSPACE": str(_isolated_workspace)})
    assert out.returncode == 2, out.stderr
    assert "model 'ridge' has no data-parallel training" in out.stderr + out.stdout
    assert not (_isolated_workspace / "runs").exists() or \
        not any((_isolated_workspace / "runs").iterdir())


@pytest.mark.ray
@pytest.mark.slow
def test_stop_ends_every_worker_and_resume_reaches_the_uninterrupted_weights(
        ds, tmp_path, ray_cluster):
    run_dir = tmp_path / "run"
    params = dict(epochs=60)

    def progressed() -> bool:     # the driver's SIGTERM flag: up once rank 0 reports a step
        path = run_dir / "events.jsonl"
        return path.exists() and '"progress"' in path.read_text()

    cut, _ = _fit(ds, run_dir, 2, params=params, should_stop=progressed)
    assert cut.stopped_
    mid = torch.load(run_dir / "checkpoints" / "last.pt", weights_only=True)["loop"]
    assert 0 < mid["global_step"] < 180
    done, _ = _fit(ds, run_dir, 2, params=params, resume=True)
    assert not done.stopped_
    last = torch.load(run_dir / "checkpoints" / "last.pt", weights_only=True)["loop"]
    assert last["global_step"] == 180
    ref, _ = _fit(ds, tmp_path / "ref", 1, params=params)
    X = ds.split("test").noisy(1.0)
    np.testing.assert_allclose(done.predict(X), ref.predict(X), atol=1e-4)
    assert [h["val_r2"] for h in done.history_] == pytest.approx(
        [h["val_r2"] for h in ref.history_], abs=1e-4)


@pytest.mark.ray
@pytest.mark.slow
def test_cli_run_with_two_workers_lands_in_the_store(_isolated_workspace, tiny_dataset,
                                                     _quiet_ray):
    ws = _isolated_workspace
    root = ws / "datasets" / "tiny"
    for shard in tiny_dataset.glob("*/dataset.h5"):
        (root / shard.parent.name).mkdir(parents=True)
        (root / shard.parent.name / "dataset.h5").symlink_to(shard)
    (root / "dataset.json").write_bytes((tiny_dataset / "dataset.json").read_bytes())
    from engine.models.vit.presets import VIT_PRESETS
    sets = [x for k, v in PARAMS.items() if k in VIT_PRESETS["vit-cpu"]
            for x in ("--set", f"{k}={v}")]
    env = {**os.environ, "LOGG_WORKSPACE": str(ws)}
    env.pop("RAY_ADDRESS", None)
    out = subprocess.run([*CLI, "run", "vit", "--size", str(N_TRAIN), "--dataset", "tiny",
                          "--preset", "vit-cpu", *sets, "--set", "epochs=1",
                          "--device", "cpu", "--workers", "2"],
                         capture_output=True, text=True, env=env, timeout=400)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    (run_dir,) = list((ws / "runs").iterdir())
    info = json.loads((run_dir / "run.json").read_text())
    assert info["spec"]["workers"] == 2
    assert (run_dir / "checkpoints" / "best.pt").exists()
    assert (run_dir / "checkpoints" / "last.pt").exists()
    events = _events(run_dir)
    prog = [e for e in events if e["event"] == "progress"]
    assert prog and prog[-1]["done"] == prog[-1]["total"] == 3
    assert [e["status"] for e in events if e["event"] == "end"] == ["finished"]
    assert any("2 Ray Train workers" in e.get("message", "") for e in events)
    m = json.loads((run_dir / "metrics.json").read_text())
    pred = pd.read_parquet(run_dir / "predictions.parquet")
    r2 = 1 - np.sum((pred.y_true - pred.y_pred) ** 2) / \
        np.sum((pred.y_true - pred.y_true.mean()) ** 2)
    assert np.isfinite(m["overall"]["r2"]) and m["overall"]["r2"] == pytest.approx(r2)
    from engine.store.reader import query_df
    df = query_df(ws, "SELECT status FROM runs WHERE run_id = ?", [run_dir.name])
    assert list(df.status) == ["finished"]
