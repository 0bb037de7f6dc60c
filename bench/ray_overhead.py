"""Overhead of the Ray executor on a tiny scaling grid, measured side by side in this run.

The same grid (ridge at 2 sizes + lgbm-fast at 1 size on a small real pfsspec dataset)
runs (a) through the local executor (engine.runs.scaling.run_grid: one worker subprocess
after the other), (b) `ray-serial`: the same loop but each run a Ray task waited for before
the next (the per-run overhead of Ray: task dispatch, folder shipping, driver ingest), and
(c) `ray-parallel`: engine.runs.ray.executor.run_grid_ray, all points submitted at once to a
local Ray cluster started here with --cpus CPUs (one CPU per run). Every run uses one
thread (OMP_NUM_THREADS=1, what a 1-CPU Ray task gets), so only the executor differs.
Each pass uses a fresh workspace so nothing is skipped; the best of --repeats is kept.
Ratios = Ray wall / local wall (warm cluster); the cluster's start time is reported
separately (paid once per driver session). The R² of every point must agree.

Writes bench/results/ray_overhead.json.
Usage: python bench/ray_overhead.py [--repeats 2] [--cpus 2] [--storage auto|shared|ship]"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
OUT = ROOT / "bench" / "results" / "ray_overhead.json"
KINDS = ("local", "ray-serial", "ray-parallel")
GRID = {"models": ["ridge", "lgbm"], "sizes": ["300", "600"]}


def plan(ws: Path, dataset: Path):
    from engine.runs.scaling import plan_grid

    ridge = plan_grid(["ridge"], GRID["sizes"], workspace=ws, dataset=str(dataset))
    lgbm = plan_grid(["lgbm"], GRID["sizes"][:1], workspace=ws, dataset=str(dataset),
                     presets={"lgbm": "lgbm-fast"})
    return ridge + lgbm


def r2s(ws: Path) -> dict[str, float]:
    from engine.store.reader import query_df

    df = query_df(ws, """SELECT r.model, r.train_size, o.r2 FROM runs r JOIN run_overall o
                         ON o.run_id = r.run_id AND o.subset = 'all'""")
    return {f"{m}@{n}": float(v) for m, n, v in zip(df.model, df.train_size, df.r2)}


def one_pass(kind: str, tmp: Path, dataset: Path, k: int, options=None) -> tuple[float, dict]:
    from engine.runs.ray.executor import RayExecutor, launch_spec, run_grid_ray
    from engine.runs.scaling import run_grid

    ws = tmp / f"{kind}-{k}"
    points = plan(ws, dataset)
    t0 = time.perf_counter()
    if kind == "local":
        done = run_grid(points, workspace=ws)
    elif kind == "ray-serial":
        executor = RayExecutor(options)

        def run_one(spec):
            handle = launch_spec(spec, ws, executor)
            handle.wait()
            return handle.run_id, handle.status

        done = run_grid(points, workspace=ws, run_one=run_one)
    else:
        done = run_grid_ray(points, workspace=ws, options=options)
    wall = time.perf_counter() - t0
    bad = [(rid, st) for _, rid, st in done if st != "finished"]
    if bad:
        raise SystemExit(f"{kind} pass {k}: runs not finished: {bad}")
    return wall, r2s(ws)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--cpus", type=int, default=2)
    ap.add_argument("--storage", default="auto")
    args = ap.parse_args()
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    os.environ["OMP_NUM_THREADS"] = "1"  # local workers: the thread count a Ray task gets
    from fakes import make_fake_dataset

    from engine.models.ray_train import import_ray
    from engine.runs.ray.executor import RayOptions

    tmp = Path(tempfile.mkdtemp(prefix="ray-overhead-"))
    try:
        dataset = make_fake_dataset(tmp / "data" / "fake", train_shards=(300, 300),
                                    n_val=100, n_test=200, n_pixels=256)
        ray = import_ray()
        t0 = time.perf_counter()
        ray.init(num_cpus=args.cpus, include_dashboard=False, log_to_driver=False,
                 logging_level="WARNING")
        start_s = time.perf_counter() - t0
        options = RayOptions(storage=args.storage)
        walls: dict[str, list[float]] = {k: [] for k in KINDS}
        agree = []
        for k in range(args.repeats):  # interleaved so load drift hits every kind alike
            r2 = {}
            for kind in KINDS:
                wall, r2[kind] = one_pass(kind, tmp, dataset, k, options)
                walls[kind].append(wall)
            for kind in KINDS[1:]:
                same = r2[kind].keys() == r2["local"].keys()
                agree.append(max(abs(r2[kind][x] - r2["local"][x]) for x in r2["local"])
                             if same else float("inf"))
            print(f"pass {k}: " + ", ".join(f"{n} {walls[n][-1]:.2f} s" for n in KINDS),
                  flush=True)
        ray.shutdown()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    best = {k: min(v) for k, v in walls.items()}
    res = {"grid": "ridge@300,600 + lgbm-fast@300 (fake pfsspec dataset, 256 px)",
           "n_runs": len(GRID["sizes"]) + 1, "ray_cpus": args.cpus, "storage": args.storage,
           "host_cpus": os.cpu_count(), "host_load_avg_1m": os.getloadavg()[0],
           "repeats": args.repeats, "threads_per_run": 1,
           "local_wall_s": best["local"], "ray_serial_wall_s": best["ray-serial"],
           "ray_parallel_wall_s": best["ray-parallel"], "ray_cluster_start_s": start_s,
           "ratio_ray_serial_over_local": best["ray-serial"] / best["local"],
           "ratio_ray_parallel_over_local": best["ray-parallel"] / best["local"],
           "ratio_ray_parallel_incl_cluster_start":
               (best["ray-parallel"] + start_s) / best["local"],
           "walls_s": walls, "max_abs_r2_diff_ray_vs_local": max(agree)}
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(res, indent=2) + "\n")
    print(f"local {best['local']:.2f} s | ray-serial {best['ray-serial']:.2f} s (ratio "
          f"{res['ratio_ray_serial_over_local']:.2f}) | ray-parallel "
          f"{best['ray-parallel']:.2f} s (ratio {res['ratio_ray_parallel_over_local']:.2f}; "
          f"{res['ratio_ray_parallel_incl_cluster_start']:.2f} incl. the {start_s:.1f} s "
          f"cluster start) | max |ΔR²| {res['max_abs_r2_diff_ray_vs_local']:.2e}")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
