"""Coverage of stored runs' calibrated intervals on a larger held-out split (issue 13).

test_1k_0 has 1,000 stars: 14-260 per SNR bin, too few to tell a 95 % interval that covers
93 % from one that covers 95 %. This script builds (once) an extra test shard with its own
frozen noise and no CRLB (`test_5k_1`, 5,000 stars, ~5 min on 2 busy cores), then, for each
run id given, loads the run's checkpoint, predicts that shard, calibrates exactly as the
runner does (engine.runs.intervals: the calibration part of the dataset's validation
split, the rows that did not choose the model) and scores the
intervals with engine.eval.uncertainty. Per SNR bin it prints the issue's binomial 95 %
range and the beta-binomial one that also counts the calibration set's own spread
(conditional coverage of split conformal ~ Beta(l, n_cal + 1 − l), l = ⌈(n_cal + 1)·α⌉).
Nothing is written to the store.

    LOGG_WORKSPACE=/tmp/ws python bench/uq_coverage_holdout.py --dataset default RUN_ID ...
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from engine.eval.bins import SNR  # noqa: E402
from engine.eval.uncertainty import score_uncertainty  # noqa: E402
from engine.generator.build import build_dataset  # noqa: E402
from engine.generator.presets import Preset, ShardSpec  # noqa: E402
from engine.io.dataset import resolve_dataset  # noqa: E402
from engine.models.conformal import snr_categories  # noqa: E402
from engine.runs.intervals import predict_intervals, split_validation  # noqa: E402
from engine.runs.registry import get_adapter  # noqa: E402
from engine.runs.runner import predict_split  # noqa: E402


def beta_binomial_range(n_test: int, n_cal: int, level: float) -> tuple[float, float]:
    from scipy.stats import betabinom
    k = math.ceil((n_cal + 1) * level)
    if k > n_cal:
        return math.nan, math.nan
    lo, hi = betabinom(n_test, k, n_cal + 1 - k).interval(0.95)
    return lo / n_test, hi / n_test


def holdout_split(ws: Path, rows: int, seed: int):
    name = f"test_{rows // 1000}k_1" if rows % 1000 == 0 else f"test_{rows}_1"
    out = ws / "datasets-holdout" / name
    preset = Preset("holdout", (ShardSpec(name, rows, crlb=False, noisy=True),))
    build_dataset(preset, out=out, seed=seed, name="holdout")
    return resolve_dataset(out, ws).split(name)


def score_run(ws: Path, run_id: str, val, big) -> list[str]:
    run = ws / "runs" / run_id
    model = json.loads((run / "run.json").read_text())["model"]
    ad = get_adapter(model)
    est = ad.load(run / "checkpoints")
    y = big.params["log_g"].to_numpy(np.float64)
    p = predict_split(ad, est, big, 1.0)
    val = split_validation(val)[1]
    iv, facts = predict_intervals(ad, est, val, big, 1.0, p)
    if iv is None:
        return [f"{run_id}: no intervals ({facts.get('reason')})"]
    sc = score_uncertainty(y, p, iv["sigma"], iv, big.params)
    n_cal = np.bincount(snr_categories(val.params["snr"].to_numpy()), minlength=len(SNR.labels))
    r2 = 1 - np.sum((y - p) ** 2) / np.sum((y - y.mean()) ** 2)
    c68, c95 = sc.overall(0.6827), sc.overall(0.95)
    lines = [f"{run_id} ({model}, {facts.get('method')}): R² {r2:.3f}, n {c95['n']}, "
             f"cov68 {100 * c68['observed']:.1f} [{100 * c68['lo']:.1f}, {100 * c68['hi']:.1f}]"
             f", cov95 {100 * c95['observed']:.1f} [{100 * c95['lo']:.1f}, "
             f"{100 * c95['hi']:.1f}], width95 {c95['width']:.3f} dex"]
    for r in sc.coverage:
        if r["scheme"] != "snr" or r["n"] < 100 or abs(r["nominal"] - 0.95) > 1e-9:
            continue
        b = list(SNR.labels).index(r["label"])
        blo, bhi = beta_binomial_range(r["n"], int(n_cal[b]), 0.95)
        lines.append(f"  snr {r['label']:>9}  n {r['n']:5d}  n_val {n_cal[b]:5d}  cov95 "
                     f"{100 * r['observed']:5.1f}  binomial [{100 * r['lo']:.1f}, "
                     f"{100 * r['hi']:.1f}]{' OUT' if r['flag'] else '    '}  beta-binomial "
                     f"[{100 * blo:.1f}, {100 * bhi:.1f}]"
                     f"{' OUT' if not blo <= r['observed'] <= bhi else ''}")
    return lines


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run_ids", nargs="+")
    ap.add_argument("--dataset", default="default")
    ap.add_argument("--rows", type=int, default=5000)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    ws = Path(os.environ.get("LOGG_WORKSPACE", "workspace"))
    ds = resolve_dataset(a.dataset, ws)
    big = holdout_split(ws, a.rows, a.seed)
    for rid in a.run_ids:
        print("\n".join(score_run(ws, rid, ds.split("val"), big)), flush=True)


if __name__ == "__main__":
    main()
