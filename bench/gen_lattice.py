"""Generator v1 direct vs generator v2 through the persistent node lattice, side by side in
one run on this machine (issue 11 item 5), and the projected `bosz-1m` build time.

Phases, in one process, one after the other on the same snapped draws:
  A. v2 lattice build: a snapped 20k-row v2 build into an empty scratch workspace; its
     node phase gives the lattice's own build rate (nodes/s, compiled BatchSynth, steady
     state: from the progress events, so the torch.compile time is reported apart).
  B. v2 with the lattice in place: the same 20k-row build again (new dataset name): rows/s
     end to end (interpolation + noise + SNR + HDF5 write), and where the time goes.
  C. v1 direct (`--physics me`, compiled): the same 20k-row build, rows/s and the same
     breakdown.
  D. CRLB throughput: fisher.crlb with the lte and me Fisher models, as the builder calls it.
Then the projection for `bosz-1m` (1,000,000 train + 12,000 val/test rows, 12,000 CRLBs,
30,240 nodes), without and with the CRLB pass.

So that phase A does not have to synthesise the whole 30,240-node lattice (~30 min of both
cores), the labels of all three builds are drawn in a sub-box of the prior (`SUB_BOX`, node
aligned; the build's `sample_labels` is swapped for one on the sub-box — the only change
to the build path). Per-row costs do not depend on where θ lies. Writes
bench/results/gen_lattice.json with the 1-minute load average beside each phase."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SUB_BOX = {"T_eff": (4500.0, 5000.0), "log_g": (2.0, 3.0), "M_H": (-1.0, -0.5),
           "a_M": (0.0, 0.25), "C_M": (-0.25, 0.0)}
BOSZ_1M = {"train_rows": 1_000_000, "other_rows": 12_000, "crlb_rows": 12_000, "nodes": 30_240}


class Recorder:
    """Callback: every event with its time; rates from the progress events of one unit."""

    def __init__(self) -> None:
        self.events: list[tuple[float, str, dict]] = []

    def __call__(self, event: str, /, **f) -> None:
        self.events.append((time.perf_counter(), event, f))

    def steady_rate(self, unit: str) -> dict:
        """(done_last − done_first)/(t_last − t_first) over the progress events after the
        `start` of `unit` (the first batch, which holds any warm-up, is excluded)."""
        out, on = [], False
        for t, e, f in self.events:
            if e == "start":
                on = f.get("unit") == unit
            elif e == "progress" and on:
                out.append((t, f["done"]))
        if len(out) < 2:
            return {"rate": None, "units": out[-1][1] if out else 0}
        (t0, d0), (t1, d1) = out[0], out[-1]
        return {"rate": (d1 - d0) / max(t1 - t0, 1e-9), "units": d1, "seconds": t1 - t0}

    def phase_start(self, unit: str) -> float | None:
        return next((t for t, e, f in self.events if e == "start" and f.get("unit") == unit), None)


class Timers:
    """Wrap build-path functions to sum the seconds spent in each (same calls, timed)."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self._undo: list = []

    def wrap(self, owner, attr: str, label: str) -> None:
        fn = getattr(owner, attr)

        def timed(*a, **k):
            t = time.perf_counter()
            try:
                return fn(*a, **k)
            finally:
                self.seconds[label] = self.seconds.get(label, 0.0) + time.perf_counter() - t
        setattr(owner, attr, timed)
        self._undo.append((owner, attr, fn))

    def restore(self) -> None:
        for owner, attr, fn in reversed(self._undo):
            setattr(owner, attr, fn)
        self._undo.clear()


def sub_sample(rng, n, *, snap=False):
    """priors.sample_labels on SUB_BOX (node aligned, so snapped values are BOSZ nodes)."""
    from engine.generator import priors
    saved = dict(priors.BOX)
    priors.BOX.update(SUB_BOX)
    try:
        return priors.sample_labels(rng, n, snap=snap)
    finally:
        priors.BOX.update(saved)


def timed_build(preset, name, ws, physics, compile_, batch, synth_label):
    """One build with the per-stage timers; returns (wall s, Recorder, stage seconds)."""
    from engine.generator import build
    from engine.generator.lte.lattice import LatticeSynth
    from engine.generator.synth import BatchSynth
    from engine.io.shard_writer import ShardWriter
    tm = Timers()
    tm.wrap(build, "error_from_flux", "noise (error_from_flux)")
    tm.wrap(build, "_snrs", "snr columns")
    tm.wrap(ShardWriter, "write_rows", "hdf5 write_rows")
    tm.wrap(ShardWriter, "checkpoint", "hdf5 checkpoint")
    tm.wrap(ShardWriter, "finish", "params table + verify + rename")
    tm.wrap(LatticeSynth if synth_label == "lattice" else BatchSynth, "__call__",
            f"synthesis ({synth_label})")
    rec = Recorder()
    t = time.perf_counter()
    try:
        build.build_dataset(preset, name=name, workspace=ws, physics=physics, compile=compile_,
                            batch=batch, crlb=False, callbacks=[rec])
    finally:
        tm.restore()
    wall = time.perf_counter() - t
    return wall, rec, tm.seconds


def crlb_rate(physics: str, n: int) -> dict:
    """Spectra/s of fisher.crlb as the builder calls it (chunks of 16, real errors)."""
    from engine.generator.build import NOISE_LEVEL
    from engine.generator.fisher import crlb
    from engine.generator.noise import NoiseConfig, draw_k, error_from_flux
    from engine.generator.physics import fisher_model, synth_module
    from engine.generator import grids
    rng = np.random.default_rng(3)
    theta, _ = sub_sample(rng, n + 2)
    flux = synth_module(physics).BatchSynth(16)(theta)
    err = error_from_flux(flux, grids.wave(), np.full(n + 2, 21.5), draw_k(rng, n + 2,
                                                                          NoiseConfig()))
    model = fisher_model(physics)
    crlb(theta[:2], err[:2], noise_level=NOISE_LEVEL, model=model)      # warm-up
    t = time.perf_counter()
    crlb(theta[2:], err[2:], noise_level=NOISE_LEVEL, model=model)
    dt = time.perf_counter() - t
    return {"spectra": n, "seconds": dt, "rate": n / dt}


def _report(res: dict, key: str, out: str) -> None:
    """Print one phase's figures and write the results so far (a partial file survives a
    bench killed in a later phase)."""
    print(key[0], json.dumps(res[key]), flush=True)
    Path(out).write_text(json.dumps(res, indent=2) + "\n")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=20000)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--crlb-n", type=int, default=8)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--workspace", default="/tmp/lattice-bench-ws")
    ap.add_argument("--keep", action="store_true", help="keep the scratch workspace's lattice")
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "gen_lattice.json"))
    args = ap.parse_args()
    import torch
    torch.set_num_threads(args.threads)
    from engine.generator import build
    from engine.generator.presets import Preset, ShardSpec
    ws = Path(args.workspace)
    if not args.keep:
        shutil.rmtree(ws / "cache", ignore_errors=True)
    shutil.rmtree(ws / "datasets", ignore_errors=True)
    build.sample_labels = sub_sample
    label = f"train_{args.rows // 1000}k_0" if args.rows % 1000 == 0 else f"train_{args.rows}_0"
    preset = Preset("bench-snap", (ShardSpec(label, args.rows),), snap=True)
    res: dict = {"rows": args.rows, "batch": args.batch, "threads": args.threads,
                 "sub_box": SUB_BOX, "cpus": os.cpu_count()}

    load = lambda: os.getloadavg()[0]  # noqa: E731
    # A: the lattice's own build (nodes) + the first build's rows
    la = load()
    wall, rec, _ = timed_build(preset, "v2-first", ws, "lte", "on", args.batch, "lattice")
    nodes = rec.steady_rate("nodes")
    t_nodes0, t_rows0 = rec.phase_start("nodes"), rec.phase_start("spectra")
    res["A_lattice_build"] = {"wall_s": wall, "nodes": nodes["units"],
                              "nodes_per_s_steady": nodes["rate"],
                              "node_phase_s": (t_rows0 - t_nodes0) if t_nodes0 else None,
                              "load_1min_before": la}
    _report(res, "A_lattice_build", args.out)
    # B: lattice in place
    lb = load()
    wall, rec, stages = timed_build(preset, "v2-lattice", ws, "lte", "on", args.batch, "lattice")
    res["B_v2_lattice"] = {"wall_s": wall, "rows_per_s_end_to_end": args.rows / wall,
                           "rows_per_s_steady": rec.steady_rate("spectra")["rate"],
                           "nodes_synthesised": sum(1 for _, e, f in rec.events
                                                    if e == "start" and f.get("unit") == "nodes"),
                           "stage_seconds": stages, "load_1min_before": lb}
    _report(res, "B_v2_lattice", args.out)
    # C: v1 direct
    lc = load()
    wall, rec, stages = timed_build(preset, "v1-direct", ws, "me", "on", args.batch, "v1 direct")
    res["C_v1_direct"] = {"wall_s": wall, "rows_per_s_end_to_end": args.rows / wall,
                          "rows_per_s_steady": rec.steady_rate("spectra")["rate"],
                          "stage_seconds": stages, "load_1min_before": lc}
    _report(res, "C_v1_direct", args.out)
    res["ratio_v2_lattice_over_v1_direct_steady"] = (res["B_v2_lattice"]["rows_per_s_steady"]
                                                     / res["C_v1_direct"]["rows_per_s_steady"])
    # D: CRLB
    res["D_crlb"] = {"lte": crlb_rate("lte", args.crlb_n), "me": crlb_rate("me", args.crlb_n),
                     "load_1min_before": load()}
    print("D", json.dumps(res["D_crlb"]), flush=True)
    res["projection_bosz_1m"] = project(res)
    res["load_1min_end"] = load()
    Path(args.out).write_text(json.dumps(res, indent=2) + "\n")
    print(json.dumps(res["projection_bosz_1m"], indent=2))
    shutil.rmtree(ws / "datasets", ignore_errors=True)


def project(res: dict) -> dict:
    """Minutes for bosz-1m from the measured rates (2 cores, this machine's load)."""
    rows = BOSZ_1M["train_rows"] + BOSZ_1M["other_rows"]
    node_s = BOSZ_1M["nodes"] / res["A_lattice_build"]["nodes_per_s_steady"]
    v2_rows_s = rows / res["B_v2_lattice"]["rows_per_s_steady"]
    v1_rows_s = rows / res["C_v1_direct"]["rows_per_s_steady"]
    c2 = BOSZ_1M["crlb_rows"] / res["D_crlb"]["lte"]["rate"]
    c1 = BOSZ_1M["crlb_rows"] / res["D_crlb"]["me"]["rate"]
    m = lambda s: round(s / 60, 1)  # noqa: E731
    return {"v2_first_build_min": {"lattice": m(node_s), "rows": m(v2_rows_s),
                                   "no_crlb": m(node_s + v2_rows_s),
                                   "with_crlb": m(node_s + v2_rows_s + c2)},
            "v2_lattice_present_min": {"no_crlb": m(v2_rows_s), "with_crlb": m(v2_rows_s + c2)},
            "v1_direct_min": {"no_crlb": m(v1_rows_s), "with_crlb": m(v1_rows_s + c1)},
            "crlb_pass_min": {"lte": m(c2), "me": m(c1)}}


if __name__ == "__main__":
    main()
