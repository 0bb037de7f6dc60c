"""How far node-lattice interpolation is from the exact v2 model, in units of the noise σ
(issue 11 item 5: should the default preset, whose labels are continuous, draw from the
lattice?).

At M random θ from the prior box (seed 0):
  (a) snapped, one free axis (what `bosz-1m` does): θ_s = θ with four labels snapped to
      their nodes and one random axis left free; interpolant = Catmull–Rom through the 4
      nodes of the free axis (engine.generator.lte.lattice); reference = the model at θ_s.
  (b) full 5-D multilinear: interpolant = the 2⁵ = 32 corner nodes of θ's cell, weights
      Π(1 − t_i or t_i); reference = the model at θ.
Both renormalised to median 0.5, as the lattice path does. σ = `noise.error_from_flux` of
the exact spectrum at i = 20.5 and 22.5 (k = 1.42, the median k; 12 × 900 s). Per θ:
rms(Δ/σ), max|Δ/σ| and χ² = Σ(Δ/σ)² over the 4096 pixels (χ² ≳ 1: the interpolation error
is detectable in one spectrum at that magnitude). Node spectra come from (and go into) the
scratch workspace's persistent lattice. Writes bench/results/lattice_interp_error.json."""

from __future__ import annotations

import argparse
import itertools
import json
import os
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
MAGS = (20.5, 22.5)


def multilinear(theta: np.ndarray):
    """Flat node numbers (n, 32) of θ's cell corners and their weights (n, 32)."""
    from engine.generator.lte.node_store import LO, N_NODES, STEP, flat_index
    u = (theta - LO) / STEP
    i0 = np.clip(np.floor(u).astype(int), 0, np.array(N_NODES) - 2)
    t = u - i0
    keys, ws = [], []
    for corner in itertools.product((0, 1), repeat=5):
        c = np.array(corner)
        keys.append(flat_index(i0 + c))
        ws.append(np.prod(np.where(c == 1, t, 1 - t), axis=1))
    return np.stack(keys, 1), np.stack(ws, 1)


def snap_one_free(theta: np.ndarray, rng) -> np.ndarray:
    from engine.generator.lte.node_store import LO, N_NODES, STEP
    free = rng.integers(0, 5, len(theta))
    snapped = LO + STEP * np.clip(np.round((theta - LO) / STEP), 0, np.array(N_NODES) - 1)
    keep = np.arange(5)[None, :] == free[:, None]
    return np.where(keep, theta, snapped), free


def stats(delta: np.ndarray, sigma: np.ndarray) -> dict:
    z = delta / sigma
    per = {"rms_z": np.sqrt((z ** 2).mean(1)), "max_abs_z": np.abs(z).max(1),
           "chi2": (z ** 2).sum(1)}
    return {k: {"median": float(np.median(v)), "p90": float(np.quantile(v, 0.9)),
                "max": float(v.max())} for k, v in per.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=16)
    ap.add_argument("--workspace", default="/tmp/lattice-bench-ws")
    ap.add_argument("--compile", action="store_true")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "lattice_interp_error.json"))
    args = ap.parse_args()
    import torch
    torch.set_num_threads(args.threads)
    from engine.generator import grids
    from engine.generator.lte.lattice import interpolate, plan
    from engine.generator.lte.node_store import NodeLattice, lattice_root
    from engine.generator.lte.synth import BatchSynth
    from engine.generator.noise import NoiseConfig, error_from_flux
    from engine.generator.priors import sample_labels, PARAMS

    rng = np.random.default_rng(0)
    theta, _ = sample_labels(rng, args.n)
    theta_s, free = snap_one_free(theta, rng)
    synth = BatchSynth(16, compile=args.compile)
    t0 = time.perf_counter()
    lat = NodeLattice(lattice_root(args.workspace))
    k_a, w_a = plan(theta_s)
    k_b, w_b = multilinear(theta)
    lat.ensure(np.concatenate([k_a.ravel(), k_b.ravel()]), synth)
    exact = synth(np.concatenate([theta_s, theta]))
    ex_a, ex_b = exact[:args.n], exact[args.n:]
    f_a = interpolate(lat.flux, lat.rows(k_a), w_a)
    f_b = interpolate(lat.flux, lat.rows(k_b), w_b)
    wave = grids.wave()
    out = {"n_theta": args.n, "seconds": time.perf_counter() - t0, "compiled": synth.compiled,
           "load_1min": os.getloadavg()[0], "k": NoiseConfig().k0}
    for mag in MAGS:
        sig_a = error_from_flux(ex_a, wave, np.full(args.n, mag), np.full(args.n, NoiseConfig().k0))
        sig_b = error_from_flux(ex_b, wave, np.full(args.n, mag), np.full(args.n, NoiseConfig().k0))
        out[f"i={mag}"] = {"a_snapped_one_free_axis": stats(f_a - ex_a, sig_a),
                           "b_multilinear_5d": stats(f_b - ex_b, sig_b),
                           "median_sigma": float(np.median(sig_b))}
        # per free axis of (a): where the snapped path's error comes from
        z = (f_a - ex_a) / sig_a
        out[f"i={mag}"]["a_chi2_by_free_axis"] = {
            PARAMS[j]: [round(float(c), 3) for c in (z[free == j] ** 2).sum(1)]
            for j in range(5) if (free == j).any()}
    out["rms_flux"] = {"a": float(np.sqrt(((f_a - ex_a) ** 2).mean())),
                       "b": float(np.sqrt(((f_b - ex_b) ** 2).mean()))}
    Path(args.out).write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
