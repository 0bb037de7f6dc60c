"""Generator v2 speed work, side by side in one run: the baseline v2 (a git revision,
default `main`, exported with `git archive` as bench/gen_v1_v2.py does for v1) against this
worktree, on the same θ and the same per-pixel errors.

Per side (each in its own subprocess, alternating baseline / this tree so machine load
hits both alike; each figure the best of the repeats): eager synthesis spectra/s, with
--compile torch.compile'd synthesis spectra/s, and the exact CRLB spectra/s through
`physics.fisher_model("lte")` in chunks of 16 (as build.py does), as wall-clock rates and
as CPU seconds per spectrum (process time: less sensitive to other load on a shared box).

This tree's CRLB is timed twice: eager and with the Jacobian's line-transfer stage
torch.compile'd (`compile_jacobian`, what `data generate --compile auto` uses on long CRLB
passes; compile time reported apart, cold, in a private inductor cache).

Accuracy, from the same runs: max |Δflux| of the float32 normalised spectra (and whether
they are bit-identical), and the max relative difference of σ_CRLB(log g) = √crlb_log_g
between the two sides and against the float64 oracle (the baseline's float64 Fisher model
through jacfwd) on the --crlb-n stars.
Writes bench/results/gen_v2_speed.json with the 1-minute load average beside it."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
from git_tree import export_tree  # noqa: E402

WORKER = r"""
import json, sys, time
import numpy as np, torch
n, ncrlb, batch, threads, comp, out, oracle = (int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]),
                                               int(sys.argv[4]), sys.argv[5] == "1", sys.argv[6],
                                               sys.argv[7] == "1")
torch.set_num_threads(threads)
from engine.generator import grids
from engine.generator.lte.synth import BatchSynth, ForwardModel
from engine.generator.fisher import crlb
from engine.generator.physics import fisher_model
from engine.generator.noise import NoiseConfig, draw_k, error_from_flux
from engine.generator.priors import sample_labels
rng = np.random.default_rng(0)
theta, _ = sample_labels(rng, n)
k = draw_k(rng, n, NoiseConfig())
def timed(f):
    c, w = time.process_time(), time.perf_counter()
    r = f()
    return r, time.perf_counter() - w, time.process_time() - c
bs = BatchSynth(batch)
bs(theta[:batch])
flux, w, c = timed(lambda: bs(theta))
res = {"eager_spectra_per_s": n / w, "eager_cpu_s_per_spectrum": c / n}
err = error_from_flux(flux[:ncrlb].astype(np.float64), grids.wave(), np.full(ncrlb, 21.5), k[:ncrlb])
model = fisher_model("lte")
crlb(theta[:1], err[:1], model=model)
r, w, c = timed(lambda: crlb(theta[:ncrlb], err, chunk=16, model=model))
res.update(crlb_spectra_per_s=ncrlb / w, crlb_cpu_s_per_spectrum=c / ncrlb,
           fisher_dtype=str(next(model.buffers()).dtype))
saved = {"flux": flux, "sigma": np.sqrt(r.crlb_log_g)}
if hasattr(model, "compile_jacobian"):           # this tree: the compiled Jacobian too
    model.compile_jacobian = True
    t = time.perf_counter()
    crlb(theta[:1], err[:1], model=model)
    res["crlb_compile_s"] = time.perf_counter() - t
    rc, w, c = timed(lambda: crlb(theta[:ncrlb], err, chunk=16, model=model))
    res.update(crlb_compiled_spectra_per_s=ncrlb / w, crlb_compiled_cpu_s_per_spectrum=c / ncrlb)
    saved["sigma_compiled"] = np.sqrt(rc.crlb_log_g)
if oracle:                                       # the float64 oracle (run on the baseline)
    m64 = ForwardModel(normalise="smooth", dtype=torch.float64, analytic_jvp=True)
    saved["sigma64"] = np.sqrt(crlb(theta[:ncrlb], err, chunk=16, model=m64).crlb_log_g)
if comp:
    t = time.perf_counter(); bc = BatchSynth(batch, compile=True)
    res["compile_s"] = time.perf_counter() - t
    res["compiled"] = bc.compiled
    bc(theta[:batch])
    _, w, c = timed(lambda: bc(theta))
    res.update(compiled_spectra_per_s=n / w, compiled_cpu_s_per_spectrum=c / n)
np.savez(out, **saved)
print(json.dumps(res))
"""


def _run(path: Path, args, out: Path, oracle: bool = False) -> dict:
    # a private, initially empty inductor cache: compile_s is a cold compile
    env = dict(os.environ, PYTHONPATH=str(path), TORCHINDUCTOR_CACHE_DIR=str(out.parent / "inductor"))
    proc = subprocess.run([sys.executable, "-c", WORKER, str(args.n), str(args.crlb_n),
                           str(args.batch), str(args.threads), "1" if args.compile else "0",
                           str(out), "1" if oracle else "0"], env=env, cwd=path,
                          capture_output=True, text=True)
    if proc.returncode:
        raise SystemExit(f"worker in {path} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--n", type=int, default=64)
    ap.add_argument("--crlb-n", type=int, default=32)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--baseline", default="main", help="git revision of the baseline v2")
    ap.add_argument("--compile", action="store_true", help="also time torch.compile'd synthesis")
    args = ap.parse_args()
    res: dict = {"n": args.n, "crlb_n": args.crlb_n, "batch": args.batch, "threads": args.threads,
                 "baseline_rev": subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short",
                                                 args.baseline], capture_output=True,
                                                text=True, check=True).stdout.strip(),
                 "load_avg_1m_start": os.getloadavg()[0], "baseline": {}, "this": {}}
    with tempfile.TemporaryDirectory() as d:
        base = Path(d) / "base"
        base.mkdir()
        export_tree(args.baseline, base)
        for rep in range(args.repeat):
            for name, path in (("baseline", base), ("this", ROOT)):
                if name == "baseline" and rep == 0:   # the float64 oracle, once, baseline code
                    r = _run(path, args, Path(d) / "oracle.npz", oracle=True)
                    shutil.copy(Path(d) / "oracle.npz", Path(d) / "baseline.npz")
                else:
                    r = _run(path, args, Path(d) / f"{name}.npz")
                for key, v in r.items():
                    if isinstance(v, (bool, str)):
                        res[name][key] = v
                        continue
                    best = min if key.endswith(("_s", "_per_spectrum")) else max
                    res[name][key] = best(res[name].get(key, v), v)
        a, b = np.load(Path(d) / "baseline.npz"), np.load(Path(d) / "this.npz")
        o = np.load(Path(d) / "oracle.npz")

        def rel(x, y):
            return float(np.nanmax(np.abs(x / y - 1.0)))

        res["flux_max_abs_diff"] = float(np.abs(a["flux"] - b["flux"]).max())
        res["flux_bit_identical"] = bool(np.array_equal(a["flux"], b["flux"]))
        res["sigma_crlb_max_rel_diff"] = rel(b["sigma"], a["sigma"])
        if "sigma_compiled" in a.files:
            res["sigma_crlb_compiled_max_rel_diff"] = rel(b["sigma_compiled"], a["sigma_compiled"])
        # against the float64 oracle (the baseline's float64 Fisher model, jacfwd): the
        # baseline's own float32 σ, this tree's eager and compiled float32 σ
        res["sigma_vs_float64_oracle"] = {
            "n_stars": int(len(o["sigma64"])), "baseline": rel(a["sigma"], o["sigma64"]),
            "this_eager": rel(b["sigma"], o["sigma64"]),
            "this_compiled": rel(b["sigma_compiled"], o["sigma64"])}
    res["load_avg_1m_end"] = os.getloadavg()[0]
    for key in ("eager_spectra_per_s", "compiled_spectra_per_s", "crlb_spectra_per_s"):
        if key in res["this"] and key in res["baseline"]:
            res[f"ratio_{key}"] = res["this"][key] / res["baseline"][key]
    if "crlb_compiled_spectra_per_s" in res["this"]:
        res["ratio_crlb_compiled_vs_baseline"] = (res["this"]["crlb_compiled_spectra_per_s"]
                                                  / res["baseline"]["crlb_spectra_per_s"])
    if "crlb_compiled_spectra_per_s" in res["baseline"]:   # a baseline with the compiled Jacobian
        res["ratio_crlb_compiled_spectra_per_s"] = (res["this"]["crlb_compiled_spectra_per_s"]
                                                    / res["baseline"]["crlb_compiled_spectra_per_s"])
        res["speedup_crlb_compiled_cpu_s_per_spectrum"] = (
            res["baseline"]["crlb_compiled_cpu_s_per_spectrum"]
            / res["this"]["crlb_compiled_cpu_s_per_spectrum"])
    for key in ("eager_cpu_s_per_spectrum", "compiled_cpu_s_per_spectrum", "crlb_cpu_s_per_spectrum"):
        if key in res["this"] and key in res["baseline"]:
            res[f"speedup_{key}"] = res["baseline"][key] / res["this"][key]
    out = ROOT / "bench" / "results" / "gen_v2_speed.json"
    out.write_text(json.dumps(res, indent=2) + "\n")
    print(json.dumps(res, indent=2))


if __name__ == "__main__":
    main()
