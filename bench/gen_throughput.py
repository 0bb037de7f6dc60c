"""Generation throughput of the built-in spectrum generator vs writing the same bytes to
HDF5 with h5py alone, measured side by side in one run.

Prints spectra/s for synthesis (eager, and torch.compile'd unless --no-compile), for the
noise model, for the exact CRLB (float64 jacfwd), and for a plain h5py write of the
resulting flux+error arrays; the ratio says how many times slower generation is than the
I/O floor. Writes bench/results/gen_throughput.json."""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np


def _time(fn, repeat: int = 1) -> float:
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--n", type=int, default=512, help="spectra per measurement")
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--crlb-n", type=int, default=16)
    ap.add_argument("--no-compile", action="store_true")
    args = ap.parse_args()

    import h5py
    import torch

    from engine.generator import grids
    from engine.generator.fisher import crlb
    from engine.generator.noise import NoiseConfig, draw_k, error_from_flux
    from engine.generator.priors import sample_labels, sample_observing
    from engine.generator.synth import BatchSynth

    rng = np.random.default_rng(0)
    theta, _ = sample_labels(rng, args.n)
    obs = sample_observing(rng, args.n)
    k = draw_k(rng, args.n, NoiseConfig())
    res: dict = {"n": args.n, "batch": args.batch, "threads": torch.get_num_threads(),
                 "cpu_count": os.cpu_count(), "load_avg_1m": os.getloadavg()[0],
                 "machine": platform.processor() or platform.machine()}

    eager = BatchSynth(args.batch)
    eager(theta[: args.batch])                      # warm-up
    t_eager = _time(lambda: eager(theta))
    res["eager_spectra_per_s"] = args.n / t_eager
    t_synth = t_eager
    if not args.no_compile:
        t0 = time.perf_counter()
        comp = BatchSynth(args.batch, compile=True)
        res["compile_s"] = time.perf_counter() - t0
        res["compiled"] = comp.compiled
        t_comp = _time(lambda: comp(theta))
        res["compiled_spectra_per_s"] = args.n / t_comp
        t_synth = min(t_synth, t_comp)
    flux = eager(theta)
    t_noise = _time(lambda: error_from_flux(flux, grids.wave(), obs["mag"], k))
    err = error_from_flux(flux, grids.wave(), obs["mag"], k).astype(np.float32)
    res["noise_spectra_per_s"] = args.n / t_noise
    t_crlb = _time(lambda: crlb(theta[: args.crlb_n], err[: args.crlb_n]))
    res["crlb_spectra_per_s"] = args.crlb_n / t_crlb

    def write():
        with tempfile.TemporaryDirectory() as d:
            with h5py.File(Path(d) / "x.h5", "w") as h:
                h.create_dataset("flux", data=flux, chunks=(min(64, args.n), 4096))
                h.create_dataset("error", data=err, chunks=(min(64, args.n), 4096))
    t_write = _time(write, repeat=3)
    res["h5py_write_spectra_per_s"] = args.n / t_write
    res["generation_spectra_per_s"] = args.n / (t_synth + t_noise)
    res["ratio_generation_vs_h5py_write"] = (t_synth + t_noise) / t_write
    out = Path(__file__).resolve().parent / "results" / "gen_throughput.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(res, indent=2) + "\n")
    for key, val in res.items():
        print(f"{key:36s} {val:.4g}" if isinstance(val, float) else f"{key:36s} {val}")
    print(f"generation is {res['ratio_generation_vs_h5py_write']:.1f}× slower than writing the "
          f"same bytes with h5py -> {out}")


if __name__ == "__main__":
    main()
