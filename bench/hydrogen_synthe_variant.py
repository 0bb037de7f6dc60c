"""Generator 2.2's Paschen lines against a BOSZ-like (Kurucz SYNTHE) variant, paired on the
same stars and BOSZ-grid nodes (issue 11: do SYNTHE's Paschen lines carry more log g
information than 2.2's?). Measurement only: the variant is `ForwardModel(hydrogen="synthe")`
(engine/generator/lte/hydrogen_synthe.py); the default generator is untouched.

Parts:
* `ews`: P12–P17 equivalent widths (±4 Å, hydrogen-only residual, unconvolved; as
  bench/paschen_hydrogen_only.py) for its seven benchmark stars beside Turbospectrum's and
  2.2's stored figures (bench/results/paschen_hydrogen_only_v22.json), and along log g
  1–5 for a solar-metallicity dwarf track (5750 K) and a metal-poor giant track (4750 K,
  [M/H] −1.5, [α/M] 0.25).
* `fisher`: the grid protocol (engine/generator/calibrate_grid.py) on a seeded random
  subsample of lattice nodes: J by central differences along each grid axis with the grid
  step (one-sided at the box edges; lattice_fisher._neighbours), Σ = error_from_flux at
  mag 22 and 22.5 with the research-SNR-matched k of bench/results/grid_protocol.json (the
  SAME k for both variants, so the noise per unit flux is identical), 5-D R²_max and
  σ_CRLB(log g) (5-D and the 3-D marginal over T_eff, [M/H]). 2.2's node spectra are read
  (read-only) from the workspace lattice of key v2.2-…; the variant's are synthesised with
  the same BatchSynth path (eager float32), cached under --work so a rerun resumes.

usage: python bench/hydrogen_synthe_variant.py [ews|fisher|all] [--nodes 200] [--seed 11]
       [--lattice DIR] [--work /tmp/syntheh-work] [--json bench/results/hydrogen_synthe_variant.json]"""

from __future__ import annotations

import argparse
import json
import sys
import time
from functools import partial
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

ROOT = Path(__file__).resolve().parents[1]
LATTICE = Path("/work/main/workspace/cache/lattice")
MAGS = (22.0, 22.5)
TRACKS = {"dwarf 5750/[M/H] 0": (5750.0, 0.0, 0.0), "mp giant 4750/[M/H] -1.5": (4750.0, -1.5, 0.25)}
LOGG = np.arange(1.0, 5.01, 0.5)


def hydrogen_ews(theta: np.ndarray, hydrogen: str) -> np.ndarray:
    """EW (Å) of P12–P17 in the hydrogen-only residual, (n, 6): the recipe of
    bench/paschen_hydrogen_only.py with the chosen hydrogen mode."""
    from bench.paschen_hydrogen_only import hydrogen_only_ews

    return hydrogen_only_ews(theta, hydrogen)


def part_ews() -> dict:
    ref = json.loads((ROOT / "bench/results/paschen_hydrogen_only_v22.json").read_text())
    stars = ref["stars"]
    th = np.array([stars[s] for s in stars], float)
    t0 = time.time()
    ews = {h: hydrogen_ews(th, h) for h in ("hm", "synthe")}
    out = {"lines": list(ref["lines"]), "stars": stars,
           "ew_turbospectrum": ref["ew_turbospectrum"],
           "ew_v22": ews["hm"].round(5).tolist(), "ew_synthe": ews["synthe"].round(5).tolist(),
           "tracks": {}}
    for name, (teff, mh, am) in TRACKS.items():
        tt = np.array([[teff, g, mh, am] for g in LOGG])
        out["tracks"][name] = {"log_g": LOGG.tolist(),
                               "ew_v22": hydrogen_ews(tt, "hm").round(5).tolist(),
                               "ew_synthe": hydrogen_ews(tt, "synthe").round(5).tolist()}
    out["seconds"] = round(time.time() - t0, 1)
    return out


def grid_ks() -> dict[float, float]:
    """The research-SNR-matched k per magnitude from the grid protocol's stored run."""
    import re
    d = json.loads((ROOT / "bench/results/grid_protocol.json").read_text())
    ks = {}
    for f in d["research"]["figures"]:
        m = re.match(r"grid mag ([\d.]+): median per-pixel SNR", f["name"])
        if m:
            ks[float(m.group(1))] = float(re.search(r"k ([\d.]+)", f["note"]).group(1))
    return ks


def variant_spectra(flat: np.ndarray, work: Path, batch: int = 8) -> np.ndarray:
    """The synthe variant's node spectra (n, 4096) float32, synthesised in chunks and kept
    in work/synthe_nodes.npz (resumable)."""
    from engine.generator.lte.node_store import node_theta
    from engine.generator.lte.synth import BatchSynth, ForwardModel

    path = work / "synthe_nodes.npz"
    done: dict[int, np.ndarray] = {}
    if path.exists():
        z = np.load(path)
        done = dict(zip(z["nodes"].tolist(), z["flux"]))
    todo = [int(x) for x in flat if int(x) not in done]

    class SyntheBatch(BatchSynth):
        model_class = partial(ForwardModel, hydrogen="synthe")

    synth = SyntheBatch(batch) if todo else None
    for s in range(0, len(todo), 64):
        chunk = np.array(todo[s:s + 64])
        f = synth(node_theta(chunk))
        done.update(zip(chunk.tolist(), f))
        nodes = np.array(list(done))
        tmp = work / "synthe_nodes.tmp.npz"
        np.savez(tmp, nodes=nodes, flux=np.stack([done[k] for k in nodes.tolist()]))
        tmp.replace(path)
        print(f"  synthe nodes {len(done)} / {len(done) + len(todo) - s - len(chunk)}", flush=True)
    return np.stack([done[int(x)] for x in flat])


def fisher_figures(mu: np.ndarray, jac: np.ndarray, k: float, mag: float) -> dict:
    """Per node r2 (5-D R²_max), s5, s3 (σ_CRLB(log g) 5-D and 3-D) at one magnitude."""
    import torch

    from engine.generator.calibrate import VAR_GRID
    from engine.generator.calibrate_grid import fixed_error
    from engine.generator.fisher import crlb_from_fisher, fisher_matrix
    err = fixed_error(k)(mu.astype(np.float64), mag)
    fis = fisher_matrix(torch.from_numpy(jac.astype(np.float64)), torch.from_numpy(err))
    r5, r3 = crlb_from_fisher(fis), crlb_from_fisher(fis, (0, 1, 2))
    return {"r2": 1.0 - np.minimum(r5.crlb_log_g, VAR_GRID) / VAR_GRID,
            "s5": np.sqrt(r5.crlb_log_g), "s3": np.sqrt(r3.crlb_log_g)}


BINS = (((3750, 4500), (1.0, 3.0)), ((3750, 4500), (3.5, 5.0)), ((4750, 5250), (1.0, 3.0)),
        ((4750, 5250), (3.5, 5.0)), ((5500, 6000), (1.0, 3.0)), ((5500, 6000), (3.5, 5.0)))


def bin_table(theta: np.ndarray, res: dict) -> list[dict]:
    """Per T_eff × log g bin: node count, median per-node σ5 ratio, σ5 and R² medians."""
    out = []
    for (t0, t1), (g0, g1) in BINS:
        m = (theta[:, 0] >= t0) & (theta[:, 0] <= t1) & (theta[:, 1] >= g0) & (theta[:, 1] <= g1)
        a, b = res["v22"], res["synthe"]
        out.append({"teff": [t0, t1], "log_g": [g0, g1], "n": int(m.sum()),
                    "median_s5_ratio": float(np.median(b["s5"][m] / a["s5"][m])),
                    "s5": [float(np.median(a["s5"][m])), float(np.median(b["s5"][m]))],
                    "r2": [float(np.median(a["r2"][m])), float(np.median(b["r2"][m]))]})
    return out


def bootstrap(res: dict, n: int = 2000, seed: int = 0) -> dict:
    """5/50/95 % bootstrap (over nodes) of the median R² shift and the ratio of σ5 medians."""
    rng = np.random.default_rng(seed)
    a, b = res["v22"], res["synthe"]
    d, r = [], []
    for _ in range(n):
        i = rng.integers(0, len(a["r2"]), len(a["r2"]))
        d.append(np.median(b["r2"][i]) - np.median(a["r2"][i]))
        r.append(np.median(b["s5"][i]) / np.median(a["s5"][i]))
    return {"median_r2_shift": np.percentile(d, [5, 50, 95]).round(4).tolist(),
            "ratio_s5_medians": np.percentile(r, [5, 50, 95]).round(4).tolist()}


def part_fisher(n_nodes: int, seed: int, lattice_dir: Path, work: Path) -> dict:
    from engine.generator.lte.lattice import node_index
    from engine.generator.lte.lattice_fisher import _neighbours
    from engine.generator.lte.node_store import (N_TOTAL, STEP, NodeLattice,
                                                 flat_index, lattice_key, node_theta)
    work.mkdir(parents=True, exist_ok=True)
    key = lattice_key()
    lat = NodeLattice(lattice_dir, key=key, read_only=True)
    if lat.n_stored < N_TOTAL:
        raise SystemExit(f"lattice {lattice_dir / key} holds {lat.n_stored} of {N_TOTAL} nodes")
    rng = np.random.default_rng(seed)
    nodes = np.sort(rng.choice(N_TOTAL, n_nodes, replace=False))
    theta = node_theta(nodes)
    th_up, th_dn, span = _neighbours(theta)
    def to_flat(th):
        return flat_index(np.round(node_index(th.reshape(-1, 5))[0]).astype(np.int64)
                          ).reshape(th.shape[:-1])

    up, dn = to_flat(th_up), to_flat(th_dn)                            # (n, 5)
    need = np.unique(np.concatenate([nodes, up.ravel(), dn.ravel()]))
    t0 = time.time()
    check = need[:4]                                                   # same path as the lattice?
    from engine.generator.lte.synth import BatchSynth
    same = float(np.abs(BatchSynth(4)(node_theta(check)) - lat.flux[lat.rows(check)]).max())
    flux_s = variant_spectra(need, work)
    t_syn = time.time() - t0
    pos = {int(x): i for i, x in enumerate(need)}
    def ix(a):
        return np.vectorize(pos.__getitem__)(a)

    step = (span * STEP[None, :])                                      # (n, 5) in PARAMS units
    ks = grid_ks()
    out = {"nodes": nodes.tolist(), "n_spectra": int(len(need)), "lattice_key": key,
           "lattice_vs_eager_max_abs": same, "synth_seconds": round(t_syn, 1), "mags": {}}
    fl = {"v22": lat.flux[lat.rows(need)], "synthe": flux_s}
    for mag in MAGS:
        res = {}
        for name, f in fl.items():
            jac = np.stack([(f[ix(up[:, a])] - f[ix(dn[:, a])]) / step[:, a:a + 1]
                            for a in range(5)], -1)
            res[name] = fisher_figures(f[ix(nodes)], jac, ks[mag], mag)
        d_r2 = res["synthe"]["r2"] - res["v22"]["r2"]
        dwarf = theta[:, 1] >= 3.5
        row = {"k": ks[mag]}
        for name in fl:
            row[name] = {k: float(np.median(v)) for k, v in res[name].items()}
            row[name]["r2_dwarfs"] = float(np.median(res[name]["r2"][dwarf]))
            row[name]["r2_giants"] = float(np.median(res[name]["r2"][~dwarf]))
        row["paired_median_d_r2"] = float(np.median(d_r2))
        row["paired_mean_d_r2"] = float(np.mean(d_r2))
        row["frac_r2_up"] = float(np.mean(d_r2 > 0))
        row["ratio_median_s5"] = row["synthe"]["s5"] / row["v22"]["s5"]
        row["ratio_median_s3"] = row["synthe"]["s3"] / row["v22"]["s3"]
        row["paired_median_ratio_s5"] = float(np.median(res["synthe"]["s5"] / res["v22"]["s5"]))
        row["paired_median_ratio_s3"] = float(np.median(res["synthe"]["s3"] / res["v22"]["s3"]))
        row["bins"] = bin_table(theta, res)
        row["bootstrap_90"] = bootstrap(res)
        row["per_node"] = {n: {k: np.round(v, 5).tolist() for k, v in res[n].items()} for n in res}
        out["mags"][str(mag)] = row
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("part", nargs="?", default="all", choices=("ews", "fisher", "all"))
    ap.add_argument("--nodes", type=int, default=200)
    ap.add_argument("--seed", type=int, default=11)
    ap.add_argument("--lattice", type=Path, default=LATTICE)
    ap.add_argument("--work", type=Path, default=Path("/tmp/syntheh-work"))
    ap.add_argument("--json", type=Path, default=ROOT / "bench/results/hydrogen_synthe_variant.json")
    args = ap.parse_args()
    import torch
    torch.set_num_threads(2)
    res = json.loads(args.json.read_text()) if args.json.exists() else {}
    if args.part in ("ews", "all"):
        res["ews"] = part_ews()
        e = res["ews"]
        print("| star | line | TS | 2.2 | synthe |\n|---|---|---:|---:|---:|")
        for i, s in enumerate(e["stars"]):
            for j, ln in enumerate(e["lines"]):
                print(f"| {s} | {ln} | {e['ew_turbospectrum'][i][j]:.4f} | {e['ew_v22'][i][j]:.4f}"
                      f" | {e['ew_synthe'][i][j]:.4f} |")
    if args.part in ("fisher", "all"):
        t0 = time.time()
        res["fisher"] = part_fisher(args.nodes, args.seed, args.lattice, args.work)
        res["fisher"]["seconds"] = round(time.time() - t0, 1)
        for mag, row in res["fisher"]["mags"].items():
            print(f"mag {mag} (k {row['k']}): R²_max 5-D median 2.2 {row['v22']['r2']:.4f} → "
                  f"synthe {row['synthe']['r2']:.4f}; paired median ΔR² {row['paired_median_d_r2']:+.4f}"
                  f" ({row['frac_r2_up']:.0%} up); σ5 median ratio {row['ratio_median_s5']:.3f},"
                  f" σ3 {row['ratio_median_s3']:.3f}")
    from engine.generator.physics import generator_version
    res["generator_version"] = generator_version("lte")
    args.json.write_text(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()
