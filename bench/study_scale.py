"""The study's own scale figures, read from its results store: for every Ridge and LightGBM
run of a dataset (the research study's 50k–1M grid), training time, peak RSS, rows/s and,
for LightGBM, the binned Dataset's size beside the peak.

These runs are the measurement (the study ran them on this machine; the store keeps each
run's duration, peak RSS and `model.binned_mb`); this script only collects them and checks
LightGBM's memory rule: peak RSS ≤ 1.5 × binned size + a fixed overhead, the overhead being
what the smallest run shows beyond its binned size (the bin-construction sample of
`bin_construct_sample_cnt` rows × 4096 float64, LightGBM's bin mappers, the HDF5 chunk
buffers, the interpreter with numpy/torch loaded). It also fits peak = a + b·binned over the
grid, so the growth per binned GB is visible.

Writes bench/results/study_scale.json.
Usage: python bench/study_scale.py [--dataset bosz-1m-lte] [--workspace workspace]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from engine.store.reader import StoreReader  # noqa: E402

OUT = Path(__file__).resolve().parent / "results" / "study_scale.json"

SQL = """
SELECT r.run_id, r.model, r.preset, r.train_size, r.duration_s, r.peak_rss_mb, r.created,
       m.value AS r2,
       (SELECT num_value FROM run_facts f WHERE f.run_id = r.run_id
          AND f.key = 'train_seconds') AS train_s,
       (SELECT num_value FROM run_facts f WHERE f.run_id = r.run_id
          AND f.key = 'model.binned_mb') AS binned_mb
FROM runs r JOIN run_metrics m ON m.run_id = r.run_id
WHERE r.dataset_name = ? AND r.dataset_fingerprint = ? AND r.status = 'finished'
  AND r.model IN ('ridge', 'lgbm')
  AND m.metric = 'r2' AND m.subset = 'all' AND m.split = r.test_split
ORDER BY r.model, r.train_size, r.created
"""


def lgbm_memory(rows: list[dict]) -> dict:
    """The memory rule over the LightGBM runs (largest-first view)."""
    pts = [(r["binned_mb"], r["peak_rss_mb"], r["train_size"]) for r in rows
           if r["binned_mb"] and r["peak_rss_mb"]]
    if not pts:
        return {}
    binned, peak, size = (np.array(v, dtype=float) for v in zip(*pts))
    overhead = float(peak[0] - binned[0])        # the smallest run: peak beyond its binned size
    slope, icept = (np.polyfit(binned, peak, 1) if len(pts) > 1 else (np.nan, np.nan))
    return {"fixed_overhead_mb": overhead,
            "rule": "peak_rss_mb <= 1.5 * binned_mb + fixed_overhead_mb",
            "fit_peak_mb": {"intercept_mb": float(icept), "mb_per_binned_mb": float(slope)},
            "by_size": [{"train_size": int(n), "binned_mb": float(b), "peak_rss_mb": float(p),
                         "peak_over_binned": float(p / b),
                         "within_rule": bool(p <= 1.5 * b + overhead)}
                        for b, p, n in zip(binned, peak, size)]}


def current_fingerprint(workspace: str, name: str) -> str:
    """The fingerprint of the workspace's dataset `name` (its identity includes the
    generator version), so the figures are one build's."""
    from engine.io.dataset import resolve_dataset

    return resolve_dataset(name, workspace).fingerprint()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dataset", default="bosz-1m-lte")
    ap.add_argument("--workspace", default=os.environ.get("LOGG_WORKSPACE", "workspace"))
    ap.add_argument("--fingerprint", default=None,
                    help="which build of the dataset (default: the one in the workspace now; "
                         "runs on data of another generator version are never mixed in)")
    args = ap.parse_args()
    fingerprint = args.fingerprint or current_fingerprint(args.workspace, args.dataset)
    with StoreReader(args.workspace) as store:
        df = store.df(SQL, [args.dataset, fingerprint])
    runs = [{k: (None if v is None or (isinstance(v, float) and np.isnan(v)) else
                 (str(v) if k == "created" else v)) for k, v in row.items()}
            for row in df.to_dict("records")]
    for r in runs:
        secs = r["train_s"] or r["duration_s"]
        r["train_rows_per_s"] = r["train_size"] / secs if secs else None
        print(f"{r['model']:5s} {r['train_size']:>8,d}  R² {r['r2']:.3f}  "
              f"run {r['duration_s']:7.0f} s  train {secs:7.0f} s  "
              f"peak {r['peak_rss_mb'] / 1024:5.2f} GB"
              + (f"  binned {r['binned_mb'] / 1024:5.2f} GB" if r["binned_mb"] else ""))
    mem = lgbm_memory([r for r in runs if r["model"] == "lgbm"])
    for row in mem.get("by_size", []):
        print(f"lgbm {row['train_size']:>8,d}: peak {row['peak_rss_mb']:.0f} MB vs "
              f"1.5 × {row['binned_mb']:.0f} + {mem['fixed_overhead_mb']:.0f} = "
              f"{1.5 * row['binned_mb'] + mem['fixed_overhead_mb']:.0f} MB: "
              f"{'within' if row['within_rule'] else 'OVER'}")
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps({
        "dataset": args.dataset, "dataset_fingerprint": fingerprint,
        "store": str(Path(args.workspace) / "results.duckdb"),
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(),
                    "python": platform.python_version()},
        "note": "each run ran inside the study on this machine, beside other work (see "
                "created); times are wall seconds of the whole run and of training",
        "runs": runs, "lgbm_memory": mem}, indent=2, default=str) + "\n")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
