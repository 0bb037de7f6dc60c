"""MoE Ridge experts from one grouped pass vs one streamed pass per model, side by side.

What the MoE analyses fit (engine.analysis.moe.experts): the global Ridge on all training
rows and one Ridge expert per bin, each with the paper's α path chosen on validation rows.
(a) the per-model path (what every MoE analysis did before: `fit_global`, then `_fit_one`
    on each bin's RowSubset: one read + noise draw of the whole training split per model);
(b) `fit_experts` (one pass, engine.models.ridge_stats.accumulate_groups).
Both on the same workspace dataset, rows, bins (the true-L2-SNR bins or Teff×[M/H]),
noise and validation rows, in this run; prints the time ratio and the largest difference
of their test predictions. Writes bench/results/moe_one_pass.json.

    python bench/moe_one_pass.py --dataset bosz-200k-lte22 --size 100k [--bins snr]
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np

from engine.analysis.moe.assign import get_bins
from engine.analysis.moe.experts import MIN_TRAIN, _fit_one, fit_experts, fit_global
from engine.analysis.split_reads import RowSubset, split_meta
from engine.io.dataset import parse_size, resolve_dataset

OUT = Path(__file__).resolve().parent / "results" / "moe_one_pass.json"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", default="bosz-200k-lte22")
    ap.add_argument("--size", default="100k")
    ap.add_argument("--bins", default="snr")
    ap.add_argument("--workspace", default=os.environ.get("LOGG_WORKSPACE", "workspace"))
    args = ap.parse_args()
    ds = resolve_dataset(args.dataset, args.workspace)
    train, val, test = ds.train(parse_size(args.size)), ds.split("val"), ds.split("test")
    scheme = get_bins(args.bins)
    t0 = time.perf_counter()
    tr_bins, _ = scheme.assign(split_meta(train, 1.0), out_of_range="clamp")
    t_bins = time.perf_counter() - t0
    val_X, val_y = val.noisy(1.0), val.log_g
    val_bins, _ = scheme.assign(split_meta(val, 1.0), out_of_range="clamp")
    Xt = test.noisy(1.0)

    t0 = time.perf_counter()
    old_g, _ = fit_global(train, val_X, val_y, kind="ridge", noise_level=1.0, seed=0)
    old = []
    for b in range(scheme.k):
        rows = np.flatnonzero(tr_bins == b)
        if rows.size < MIN_TRAIN:
            old.append(None)
            continue
        m = val_bins == b
        vX, vy = (val_X[m], val_y[m]) if m.sum() >= 5 else (val_X, val_y)
        old.append(_fit_one("ridge", RowSubset(train, rows, 1.0, 0), vX, vy)[0])
    t_old = time.perf_counter() - t0

    t0 = time.perf_counter()
    (new_g, _), ex = fit_experts(train, tr_bins, val_X, val_y, val_bins, k=scheme.k,
                                 kind="ridge", noise_level=1.0, seed=0)
    t_new = time.perf_counter() - t0

    diffs = [float(np.max(np.abs(new_g.predict(Xt) - old_g.predict(Xt))))]
    for o, n in zip(old, ex.experts):
        if o is not None:
            diffs.append(float(np.max(np.abs(n.predict(Xt) - o.predict(Xt)))))
    res = {"dataset": ds.name, "fingerprint": ds.fingerprint(), "train_rows": train.n_rows,
           "bins": args.bins, "models": 1 + sum(o is not None for o in old),
           "per_model_passes_s": round(t_old, 1), "one_pass_s": round(t_new, 1),
           "ratio_per_model_over_one_pass": round(t_old / t_new, 2),
           "max_abs_pred_diff_dex": max(diffs), "train_l2_snr_s": round(t_bins, 1),
           "load_1min_before": os.getloadavg()[0], "host_cpus": os.cpu_count(),
           "date": time.strftime("%Y-%m-%d %H:%M")}
    print(json.dumps(res, indent=1))
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(res, indent=1) + "\n")


if __name__ == "__main__":
    main()
