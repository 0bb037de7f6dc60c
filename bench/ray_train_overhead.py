"""Overhead of data-parallel training on Ray Train (`run lgbm|vit --workers N`) against the
single-process fit of the same model on the same data, measured side by side in this run.

Both models go through their adapter exactly as the runner calls it (adapter.build →
adapter.train with a TrainContext), once with ctx.workers=1 (the single-process path) and
once with ctx.workers=N (engine/models/lgbm_distributed.py, engine/models/vit/distributed.py:
Ray Train workers joining the local Ray this script starts ONCE, so the cluster start is
measured separately and not charged to either fit):

- LightGBM: lgbm-fast with bagging off, early stopping off, --trees trees (default 100).
  With bagging off the N-worker model is the single-process model (same bins, same
  features per tree, exact histogram sums), so max |Δ prediction| is expected to be 0.
- ViT: a tiny SpecViT (16 tokens of 64 pixels, hidden 32, one block), dropout 0, one
  epoch of batch 64 (a few dozen steps at the default --rows). With dropout 0 the N-worker
  fit averages the same gradients as the single-process one, so predictions agree to float
  reduction order (~1e-6).

Threads: each of the N workers runs one thread (LightGBM n_jobs=1 per worker; the ViT
worker sets cpu_count // local workers = 1 on 2 cores). The single process also runs one
by default (--single-threads 1, the setting of tests/test_*_distributed.py and of
bench/ray_overhead.py): with --single-threads 2 on this loaded 2-core box the
single-process LightGBM fit swung from 5 s to 100 s between repeats (OpenMP threads
waiting on each other at every barrier while the neighbours hold a core), which buries the
overhead being measured. --single-threads N gives it the workers' total CPU instead.
Every fit opens the dataset afresh and the
single-process LightGBM binning cache is deleted before each fit, so both sides bin cold.

READ THE RATIO AS OVERHEAD, NOT SPEED-UP: on a 2-core CPU box the N workers share the same
cores the single process would use, so the ratio (N-worker wall / 1-process wall) is what
Ray Train costs here (actor start-up, worker imports, per-worker dataset open and binning,
the collective set-up, rank 0's files read back by the driver). The path exists for GPUs
and for several nodes, where each worker brings its own device/cores.

Dataset: the fake pfsspec dataset of tests/fakes.py (real HDF5 files written by engine.io,
a known log g signal), --rows training rows, 1024 pixels, built in a temp dir deleted at
the end. Each repeat runs 1-process then N-worker for each model (interleaved, so load
drift hits both alike), each after --settle seconds of quiet; the median of --repeats is
the headline (as asked), the best-of ratio and every wall are in the JSON too: on a box
shared with other jobs the single-process fits swing several-fold with the neighbours'
load, the Ray Train fits much less (their cost is mostly fixed start-up).

Writes bench/results/ray_train_overhead.json.
Usage: python bench/ray_train_overhead.py [--rows 2000] [--repeats 3] [--workers 2]
       [--single-threads 1] [--settle 3] [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))
OUT = ROOT / "bench" / "results" / "ray_train_overhead.json"
N_PIXELS = 1024
SEED = 7
# quiet Ray, as tests/conftest.py sets it for the test runs (set before ray is imported)
RAY_QUIET = {"RAY_USAGE_STATS_ENABLED": "0", "RAY_DEDUP_LOGS": "0",
             "RAY_BACKEND_LOG_LEVEL": "error", "RAY_enable_metrics_collection": "0",
             "RAY_metrics_report_interval_ms": "0", "RAY_TRAIN_ENABLE_PRINT_PATCH": "0"}


def lgbm_params(trees: int, threads: int) -> dict:
    from engine.models.lgbm_adapter import LGBMAdapter

    return {**LGBMAdapter.presets["lgbm-fast"], "n_estimators": trees, "n_jobs": threads,
            "bagging_fraction": 1.0, "bagging_freq": 0, "early_stopping_rounds": 0}


def vit_params(epochs: int) -> dict:
    return dict(patch_size=64, stride=64, hidden=32, layers=1, heads=2, mlp_ratio=2,
                dropout=0.0, attn_dropout=0.0, batch_size=64, epochs=epochs, lr=3e-3,
                warmup_frac=0.1, seed=1, eval_batch_size=512)


def fit(model: str, data: Path, run_dir: Path, rows: int, workers: int, params: dict,
        settle_s: float = 0.0):
    """One fit through the model's adapter as the runner calls it; returns (wall seconds,
    test-set predictions). The dataset is opened afresh and the binning cache removed, so
    every fit starts cold. Only adapter.train is timed (not build, not predict)."""
    from engine.io.dataset import Dataset
    from engine.models.contract import TrainContext
    from engine.runs.runner import predict_split

    if model == "lgbm":
        from engine.models.lgbm_adapter import LGBMAdapter as Adapter
    else:
        from engine.models.vit.adapter import ViTAdapter as Adapter
    shutil.rmtree(data / ".cache", ignore_errors=True)
    run_dir.mkdir(parents=True)
    adapter = Adapter()
    with Dataset(data) as ds:
        ctx = TrainContext(train=ds.train(rows), val=ds.split("val"), noise_level=1.0,
                           seed=SEED, run_dir=run_dir, checkpoint_dir=run_dir / "checkpoints",
                           device="cpu", dataset_root=ds.root, workers=workers,
                           dataset_fingerprint=f"bench-{run_dir.name}")
        est = adapter.build(params)
        time.sleep(settle_s)     # let the previous fit's Ray processes wind down first
        t0 = time.perf_counter()
        est = adapter.train(est, ctx)
        wall = time.perf_counter() - t0
        pred = np.asarray(predict_split(adapter, est, ds.split("test"), 1.0), dtype=np.float64)
    return wall, pred


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=2000, help="training rows (default 2000)")
    ap.add_argument("--repeats", type=int, default=3, help="median of this many (default 3)")
    ap.add_argument("--workers", type=int, default=2, help="Ray Train workers (default 2)")
    ap.add_argument("--trees", type=int, default=100, help="LightGBM trees (default 100)")
    ap.add_argument("--vit-epochs", type=int, default=1, help="ViT epochs of batch 64")
    ap.add_argument("--models", default="lgbm,vit", help="comma list of lgbm, vit")
    ap.add_argument("--single-threads", type=int, default=1,
                    help="threads of the single-process fit (default 1, as each worker)")
    ap.add_argument("--settle", type=float, default=3.0,
                    help="seconds to wait before each timed fit (default 3): a Ray Train "
                         "fit's actors and Ray's pre-started workers keep a core busy for "
                         "a moment after they return, which would be charged to the next "
                         "fit")
    ap.add_argument("--quick", action="store_true",
                    help="smoke run: 600 rows, 1 repeat, 30 trees")
    args = ap.parse_args()
    if args.quick:
        args.rows, args.repeats, args.trees = 600, 1, 30
    models = [m for m in args.models.split(",") if m]
    if not set(models) <= {"lgbm", "vit"} or args.workers < 2 or args.repeats < 1:
        ap.error("--models takes lgbm and/or vit; --workers ≥ 2; --repeats ≥ 1")
    for key, value in RAY_QUIET.items():
        os.environ.setdefault(key, value)
    os.environ.pop("RAY_ADDRESS", None)          # our own local Ray, not the caller's
    import torch
    from fakes import make_fake_dataset

    from engine.models.ray_train import import_ray

    import lightgbm  # noqa: F401 - imported now so no fit pays the first import

    import engine.models.lgbm_distributed  # noqa: F401
    import engine.models.vit.distributed  # noqa: F401

    torch.set_num_threads(args.single_threads)   # the single-process ViT fit
    params = {"lgbm": (lgbm_params(args.trees, args.single_threads),
                       lgbm_params(args.trees, 1)),
              "vit": (vit_params(args.vit_epochs),) * 2}
    tmp = Path(tempfile.mkdtemp(prefix="ray-train-overhead-"))
    walls = {m: {"single": [], "workers": []} for m in models}
    diffs = {m: [] for m in models}
    try:
        half = args.rows // 2
        data = make_fake_dataset(tmp / "data" / "fake", train_shards=(half, args.rows - half),
                                 n_val=200, n_test=300, n_pixels=N_PIXELS)
        ray = import_ray()
        t0 = time.perf_counter()
        ray.init(num_cpus=max(args.workers, os.cpu_count() or 1), include_dashboard=False,
                 log_to_driver=False, object_store_memory=80 * 2 ** 20,
                 logging_level="WARNING")
        start_s = time.perf_counter() - t0
        print(f"Ray start {start_s:.1f} s ({args.rows} rows x {N_PIXELS} px, "
              f"{args.workers} workers, {args.repeats} repeats)", flush=True)
        try:
            for k in range(args.repeats):
                for m in models:
                    one, pone = fit(m, data, tmp / f"{m}-1-{k}", args.rows, 1, params[m][0],
                                    args.settle)
                    many, pmany = fit(m, data, tmp / f"{m}-{args.workers}-{k}", args.rows,
                                      args.workers, params[m][1], args.settle)
                    walls[m]["single"].append(one)
                    walls[m]["workers"].append(many)
                    diffs[m].append(float(np.max(np.abs(pmany - pone))))
                    print(f"pass {k} {m}: 1 process {one:.1f} s, {args.workers} workers "
                          f"{many:.1f} s, max |Δpred| {diffs[m][-1]:.2e}", flush=True)
        finally:
            ray.shutdown()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    steps = args.vit_epochs * -(-args.rows // 64)
    what = {"lgbm": f"lgbm-fast, {args.trees} trees, bagging off, early stopping off",
            "vit": f"SpecViT p64 h32 L1, dropout 0, {steps} steps of batch 64"}
    res_models = {}
    print(f"\n{'model':6s} {'1 process':>10s} {f'{args.workers} workers':>11s} "
          f"{'ratio':>6s} {'extra':>7s} {'max |Δpred|':>12s}")
    for m in models:
        one = statistics.median(walls[m]["single"])
        many = statistics.median(walls[m]["workers"])
        res_models[m] = {"setup": what[m], "params_single": params[m][0],
                         "params_per_worker": params[m][1],
                         "single_wall_s": one, "workers_wall_s": many,
                         "ratio_workers_over_single": many / one,
                         "extra_s_workers_minus_single": many - one,
                         "ratio_incl_ray_start": (many + start_s) / one,
                         "best_single_wall_s": min(walls[m]["single"]),
                         "best_workers_wall_s": min(walls[m]["workers"]),
                         "ratio_best_workers_over_best_single":
                             min(walls[m]["workers"]) / min(walls[m]["single"]),
                         "max_abs_pred_diff": max(diffs[m]), "walls_s": walls[m]}
        print(f"{m:6s} {one:9.1f}s {many:10.1f}s {many / one:6.2f} {many - one:6.1f}s "
              f"{max(diffs[m]):12.2e}")
    print(f"Ray start-up (once per driver): {start_s:.1f} s")
    for m in models:
        r = res_models[m]
        print(f"{m}: {args.workers}-worker / 1-process = {r['ratio_workers_over_single']:.2f} "
              f"({r['ratio_incl_ray_start']:.2f} incl. the Ray start; best-of "
              f"{r['ratio_best_workers_over_best_single']:.2f})")
    doc = {"dataset": f"fake pfsspec (tests/fakes.py), {args.rows} train rows, "
                      f"{N_PIXELS} px, 300 test rows",
           "rows": args.rows, "workers": args.workers, "repeats": args.repeats,
           "statistic": "median", "ray_start_s": start_s, "settle_s": args.settle,
           "threads": {"single": args.single_threads, "per_worker": 1},
           "models": res_models,
           "note": "on a CPU box with fewer cores than workers x threads the workers share "
                   "the single process's cores: the ratio is Ray Train overhead, not "
                   "speed-up",
           "host_cpus": os.cpu_count(), "host_load_avg_1m_at_end": os.getloadavg()[0],
           "platform": platform.platform(), "python": platform.python_version(),
           "versions": _versions()}
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(doc, indent=2) + "\n")
    print(f"wrote {OUT}")


def _versions() -> dict:
    import lightgbm
    import ray
    import torch

    return {"ray": ray.__version__, "lightgbm": lightgbm.__version__,
            "torch": torch.__version__}


if __name__ == "__main__":
    main()
