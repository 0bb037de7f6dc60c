"""The generator on each device this machine has, side by side in one run: `cpu` always,
`cuda` when torch sees a GPU (`data generate --device`, engine.devices).

Per device: spectra/s of the noiseless synthesis (generator v1 `me` and v2 `lte`, eager,
and with --compile the torch.compile'd v2 model: what the node lattice of a bosz-1m build
runs) on the same prior draws, and v2's exact CRLB spectra/s through
`physics.fisher_model("lte", device)` in chunks of 16 (build.py's chunk). Each figure is
the best of --repeats after a warm-up call; the ratio is against the CPU measured in the
same run. Accuracy against the CPU from the same runs: max |Δflux| of the float32
normalised spectra and the max relative difference of σ_CRLB(log g).

Writes bench/results/gen_device.json (devices, rates, ratios, accuracy, torch version,
the GPU's name, the 1-minute load average). On a machine without a GPU it records the CPU
alone and says so: the device path itself is tested on CPU by tests/test_generator_device.py.

    python bench/gen_device.py                 # CPU, and the GPU when there is one
    python bench/gen_device.py --compile --n-lte 512 --n-crlb 256   # a GPU box"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np
import torch

from engine.devices import describe, resolve_device
from engine.generator import grids
from engine.generator.fisher import crlb
from engine.generator.noise import NoiseConfig, draw_k, error_from_flux
from engine.generator.physics import fisher_model, synth_module
from engine.generator.priors import sample_labels

OUT = Path(__file__).resolve().parent / "results" / "gen_device.json"


def _sync(dev: torch.device) -> None:
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)


def best_rate(fn, n: int, dev: torch.device, repeats: int):
    """(result of the last call, best spectra/s over `repeats` timed calls)."""
    best, out = 0.0, None
    for _ in range(repeats):
        _sync(dev)
        t = time.perf_counter()
        out = fn()
        _sync(dev)
        best = max(best, n / (time.perf_counter() - t))
    return out, best


def measure(dev: torch.device, theta: dict, k: np.ndarray, args) -> dict:
    res: dict = {"device": describe(dev)}
    flux = {}
    for physics, n in (("me", args.n_me), ("lte", args.n_lte)):
        synth = synth_module(physics).BatchSynth(args.batch, device=dev)
        synth(theta[physics][:args.batch])                                  # warm-up
        flux[physics], res[f"{physics}_spectra_per_s"] = best_rate(
            lambda s=synth, th=theta[physics][:n]: s(th), n, dev, args.repeats)
    if args.compile:
        synth = synth_module("lte").BatchSynth(args.batch, compile=True, device=dev)
        res["lte_compiled"] = synth.compiled
        if synth.compiled:
            _, res["lte_compiled_spectra_per_s"] = best_rate(
                lambda: synth(theta["lte"][:args.n_lte]), args.n_lte, dev, args.repeats)
    nc = args.n_crlb
    err = error_from_flux(flux["lte"][:nc].astype(np.float64), grids.wave(),
                          np.full(nc, 21.5), k[:nc])
    model = fisher_model("lte", dev)
    crlb(theta["lte"][:1], err[:1], model=model)                            # warm-up
    r, res["lte_crlb_spectra_per_s"] = best_rate(
        lambda: crlb(theta["lte"][:nc], err, chunk=16, model=model), nc, dev, args.repeats)
    return res | {"_flux": flux, "_sigma": np.sqrt(r.crlb_log_g)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n-me", type=int, default=256, help="v1 spectra per timed call")
    ap.add_argument("--n-lte", type=int, default=32, help="v2 spectra per timed call")
    ap.add_argument("--n-crlb", type=int, default=16, help="v2 exact CRLBs per timed call")
    ap.add_argument("--batch", type=int, default=64, help="BatchSynth batch")
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--compile", action="store_true", help="also the torch.compile'd v2 model")
    ap.add_argument("--threads", type=int, default=None, help="CPU threads (default torch's)")
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    rng = np.random.default_rng(0)
    n = max(args.n_me, args.n_lte, args.n_crlb)
    labels, _ = sample_labels(rng, n)
    theta = {"me": labels, "lte": labels}
    k = draw_k(rng, n, NoiseConfig())
    devices = [resolve_device("cpu")] + ([resolve_device("cuda")] if torch.cuda.is_available()
                                         else [])
    runs = []
    for dev in devices:
        runs.append(measure(dev, theta, k, args))
        print(json.dumps({key: v for key, v in runs[-1].items() if not key.startswith("_")}))
    cpu = runs[0]
    for r in runs[1:]:
        r["ratio_vs_cpu"] = {key: r[key] / cpu[key] for key in cpu
                             if key.endswith("_per_s") and key in r}
        r["max_abs_dflux_vs_cpu"] = {p: float(np.abs(r["_flux"][p] - cpu["_flux"][p]).max())
                                     for p in ("me", "lte")}
        r["max_rel_dsigma_crlb_vs_cpu"] = float(np.max(np.abs(r["_sigma"] / cpu["_sigma"] - 1)))
    doc = {"bench": "gen_device", "torch": torch.__version__, "cpu_threads": torch.get_num_threads(),
           "load_avg_1m": os.getloadavg()[0], "args": {k: (str(v) if isinstance(v, Path) else v)
                                                       for k, v in vars(args).items()},
           "cuda_available": torch.cuda.is_available(),
           "note": None if len(runs) > 1 else "no GPU visible to torch on this machine: CPU only",
           "runs": [{k: v for k, v in r.items() if not k.startswith("_")} for r in runs]}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(doc, indent=2) + "\n")
    for r in doc["runs"][1:]:
        print(f"{r['device']}: " + ", ".join(f"{k} {v:.2f}×" for k, v in r["ratio_vs_cpu"].items()))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
