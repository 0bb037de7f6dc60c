"""σ_CRLB(log g) from the node lattice (`--crlb-method lattice`, lte/lattice_fisher.py)
against the exact jacfwd CRLB (fisher.py) on the same rows, and the time per row both
ways (issue 11 items 4–5).

Rows: the first N rows of `bosz-1m`'s test_10k exactly as the builder draws them
(shard_rng(seed, "test_10k"): snapped labels, observing conditions with i = 20.5–22.5,
k factors), the lattice-built flux, and its error (error_from_flux), so both CRLBs use the
error the shard stores. Only the nodes those rows' lattice Jacobians read are synthesised
(jacobian_nodes: ~1,900 for 64 rows), into a scratch workspace's persistent lattice
(--workspace; rerunning reuses them). The exact pass runs eager in chunks of 16 as the
builder's `_crlb` does (the builder compiles the Jacobian only for ≥ 1000 rows; the
compiled rate is in bench/results/gen_v2_speed.json). The lattice pass is timed on the N
rows and on the N rows tiled to `--tile-rows` (steady throughput).

Writes bench/results/lattice_crlb.json (ratio σ_lattice/σ_exact: median, p10, p90, per
free axis; Schur medians both ways; seconds per row both ways; load average)."""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def rows(n: int, seed: int):
    from engine.generator.build import shard_rng
    from engine.generator.noise import NoiseConfig, draw_k
    from engine.generator.presets import get_preset
    from engine.generator.priors import sample_labels, sample_observing
    spec = next(s for s in get_preset("bosz-1m").shards if s.name == "test_10k")
    rng = shard_rng(seed, spec.name)
    theta, interp = sample_labels(rng, spec.rows, snap=True)
    obs = sample_observing(rng, spec.rows)
    k = draw_k(rng, spec.rows, NoiseConfig())
    return theta[:n], interp[:n], obs["mag"][:n], k[:n]


def stats(x: np.ndarray) -> dict:
    x = x[np.isfinite(x)]
    return {"median": float(np.median(x)), "p10": float(np.percentile(x, 10)),
            "p90": float(np.percentile(x, 90)), "min": float(x.min()), "max": float(x.max()),
            "n": int(len(x))}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=64)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--workspace", default="/tmp/latfisher-ws")
    ap.add_argument("--tile-rows", type=int, default=4096)
    ap.add_argument("--out", default=str(ROOT / "bench/results/lattice_crlb.json"))
    ap.add_argument("--nodes-only", action="store_true", help="only synthesise the nodes")
    a = ap.parse_args()

    import torch

    from engine.generator import grids
    from engine.generator.fisher import crlb as exact_crlb
    from engine.generator.lte import lattice_fisher
    from engine.generator.lte.lattice import LatticeSynth
    from engine.generator.lte.node_store import NodeLattice, lattice_root
    from engine.generator.lte.synth import BatchSynth
    from engine.generator.noise import error_from_flux
    from engine.generator.physics import fisher_model, generator_version
    from engine.generator.synth import PARAMS

    theta, interp, mag, k = rows(a.rows, a.seed)
    lat = NodeLattice(lattice_root(a.workspace))
    need = lattice_fisher.jacobian_nodes(theta)
    todo = len(lat.missing(need))
    t0 = time.time()
    if todo:
        print(f"synthesising {todo} nodes into {lat.dir}", flush=True)
        lat.ensure(need, BatchSynth(64, compile=todo >= 500),
                   [lambda e, **f: print(e, {k: f[k] for k in ("done", "total", "message")
                                               if k in f}, flush=True)])
    node_s = time.time() - t0
    if a.nodes_only:
        return
    flux = LatticeSynth(None, lat)(theta)
    err = error_from_flux(flux, grids.wave(), mag, k)

    load0 = os.getloadavg()[0]
    t0 = time.perf_counter()
    ex = exact_crlb(theta, err, model=fisher_model("lte"))
    exact_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    la = lattice_fisher.crlb(theta, err, lat)
    lat_s = time.perf_counter() - t0
    reps = max(1, a.tile_rows // a.rows)
    th_t, err_t = np.tile(theta, (reps, 1)), np.tile(err, (reps, 1))
    t0 = time.perf_counter()
    lattice_fisher.crlb(th_t, err_t, lat)
    lat_tile_s = time.perf_counter() - t0

    ratio = np.sqrt(la.crlb_log_g / ex.crlb_log_g)
    free_axis = {p: stats(ratio[interp == p]) for p in PARAMS if (interp == p).any()}
    out = {
        "generator_version": generator_version("lte"), "lattice_key": lat.key,
        "rows": a.rows, "seed": a.seed, "drawn_as": "bosz-1m test_10k, first rows",
        "mag_range": [float(mag.min()), float(mag.max())],
        "nodes_read": int(len(need)), "nodes_synthesised_now": int(todo),
        "node_synthesis_s": node_s, "torch_threads": torch.get_num_threads(),
        "load_1min_before": load0,
        "sigma_ratio_lattice_over_exact": stats(ratio),
        "sigma_ratio_by_free_axis": free_axis,
        "sigma_exact": stats(np.sqrt(ex.crlb_log_g)),
        "sigma_lattice": stats(np.sqrt(la.crlb_log_g)),
        "schur_median": {"exact": float(np.nanmedian(ex.schur)),
                         "lattice": float(np.nanmedian(la.schur))},
        "schur_ratio_lattice_over_exact": stats(la.schur / ex.schur),
        "spd": {"exact": int(ex.spd.sum()), "lattice": int(la.spd.sum())},
        "seconds_per_row": {"exact_eager": exact_s / a.rows, "lattice": lat_s / a.rows,
                            "lattice_tiled": lat_tile_s / (reps * a.rows)},
        "rows_per_s": {"exact_eager": a.rows / exact_s,
                       "lattice_tiled": reps * a.rows / lat_tile_s},
        "per_row": {"theta": theta.tolist(), "interp": list(interp), "mag": mag.tolist(),
                    "sigma_exact": np.sqrt(ex.crlb_log_g).tolist(),
                    "sigma_lattice": np.sqrt(la.crlb_log_g).tolist()},
    }
    Path(a.out).write_text(json.dumps(out, indent=1))
    show = {k: v for k, v in out.items() if k != "per_row"}
    print(json.dumps(show, indent=1))


if __name__ == "__main__":
    main()
