"""LightGBM memory: peak RSS of our streaming path vs the size of the binned Dataset
(the save_binary file) and vs the naive path (the whole float32 matrix in RAM, then
lgb.Dataset(X)), measured side by side in this run, each phase in its own process so the
peaks (ru_maxrss) do not mix.

Phases (child processes): `stream-bin` (lgb.Sequence over the HDF5 split → binned Dataset
→ save_binary), `train` (load the binary, train N trees), `naive-bin` (read X into RAM,
lgb.Dataset(X).construct()). The HDF5 dataset (engine.io's writer, random data) lives in
a temp dir that is deleted at the end.

Writes bench/results/lgbm_memory.json.  Usage: python bench/lgbm_memory.py [--rows 50000]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

OUT = Path(__file__).resolve().parent / "results" / "lgbm_memory.json"
P = 4096
PARAMS = dict(n_estimators=30, learning_rate=0.1, num_leaves=31, max_bin=63,
              feature_fraction=0.5, early_stopping_rounds=0, bin_construct_sample_cnt=50000)


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def phase(name: str, root: Path, rows: int) -> dict:
    """One measurement, run inside a fresh process."""
    from engine.io.dataset import Dataset
    from engine.models.base import NoisySplitSource
    from engine.models.lgbm import StreamingLGBM

    ds = Dataset(root)
    train = ds.train(rows)
    cache = root / "binned.bin"
    base = peak_mb()
    t0 = time.perf_counter()
    if name == "stream-bin":
        est = StreamingLGBM(**PARAMS)
        est._train_dataset(NoisySplitSource(train, 1.0, 0), cache, None)
    elif name == "train":
        est = StreamingLGBM(**PARAMS).fit(NoisySplitSource(train, 1.0, 0), cache_path=cache)
        assert est.cache_hit_
    elif name == "naive-bin":
        import lightgbm as lgb

        X = np.concatenate([x for _s, _e, x, _y in train.noisy_chunks(1.0, 0, 4096)])
        est = StreamingLGBM(**PARAMS)
        lgb.Dataset(X, label=train.log_g, params=est.dataset_params()).construct()
    return {"phase": name, "seconds": time.perf_counter() - t0, "peak_rss_mb": peak_mb(),
            "rss_before_mb": base}


def write_h5(root: Path, n: int, block: int = 8192) -> None:
    from engine.io.columns import empty_params
    from engine.io.pfsspec import SpectrumWriter

    rng = np.random.default_rng(0)
    basis = rng.standard_normal(P).astype(np.float32)
    params = empty_params(n)
    g = rng.uniform(1, 5, n)
    params["log_g"] = g
    with SpectrumWriter(root / "train_50k_0" / "dataset.h5", n_rows=n,
                        wave=np.linspace(7100.0, 8850.0, P)) as wr:
        for s in range(0, n, block):
            m = min(block, n - s)
            flux = 1.0 + 0.02 * np.outer(g[s:s + m], basis).astype(np.float32) \
                + 0.05 * rng.standard_normal((m, P), dtype=np.float32)
            wr.write_rows(s, flux=flux, error=np.full((m, P), 0.05, dtype=np.float32))
        wr.set_params(params)


def child(name: str, root: Path, rows: int) -> dict:
    out = subprocess.run([sys.executable, __file__, "--phase", name, "--root", str(root),
                          "--rows", str(rows)], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rows", type=int, default=50_000)
    ap.add_argument("--phase")
    ap.add_argument("--root")
    args = ap.parse_args()
    if args.phase:
        print(json.dumps(phase(args.phase, Path(args.root), args.rows)))
        return
    root = Path(tempfile.mkdtemp(prefix="lgbm_mem_"))
    try:
        write_h5(root, args.rows)
        res = {p: child(p, root, args.rows) for p in ("stream-bin", "train", "naive-bin")}
        bin_mb = (root / "binned.bin").stat().st_size / 2 ** 20
    finally:
        shutil.rmtree(root, ignore_errors=True)
    raw_mb = args.rows * P * 4 / 2 ** 20
    doc = {"rows": args.rows, "features": P, "params": PARAMS, "binned_file_mb": bin_mb,
           "raw_float32_mb": raw_mb, "phases": res,
           "stream_bin_peak_over_binned": res["stream-bin"]["peak_rss_mb"] / bin_mb,
           "train_peak_over_binned": res["train"]["peak_rss_mb"] / bin_mb,
           "naive_over_stream_peak": res["naive-bin"]["peak_rss_mb"]
           / res["stream-bin"]["peak_rss_mb"],
           "load_avg_1m_at_end": os.getloadavg()[0], "host_cpus": os.cpu_count()}
    print(f"{args.rows}x{P}: binned file {bin_mb:.0f} MB (raw float32 {raw_mb:.0f} MB)")
    for name, r in res.items():
        print(f"  {name:10s} peak RSS {r['peak_rss_mb']:.0f} MB  ({r['seconds']:.1f} s)")
    print(f"  peak/binned: stream-bin {doc['stream_bin_peak_over_binned']:.2f}, "
          f"train {doc['train_peak_over_binned']:.2f}; naive/stream peak "
          f"{doc['naive_over_stream_peak']:.2f}")
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(doc, indent=2) + "\n")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
