"""Generator v1 (one Milne–Eddington layer) vs v2 (depth-resolved LTE synthesis), side by
side in one run on the same θ: eager (and with --compile, torch.compile'd) synthesis spectra/s and exact-CRLB
spectra/s.

v1 is checked out of git (`--v1-commit`, default the last v1 commit) into a temporary
folder with `git archive` and run in a subprocess, v2 is this worktree; the two alternate
(v1, v2, v1, v2) so that machine load hits both alike, and each figure is the best of the
repeats. Writes bench/results/gen_v1_v2.json with the 1-minute load average beside it."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
from git_tree import export_tree  # noqa: E402
V1_COMMIT = "df82010"

WORKER = r"""
import json, sys, time
import numpy as np, torch
torch.set_num_threads(int(sys.argv[4]))
from engine.generator.lte.synth import BatchSynth
from engine.generator.fisher import crlb
from engine.generator.priors import sample_labels
n, ncrlb = int(sys.argv[1]), int(sys.argv[2])
rng = np.random.default_rng(0)
theta, _ = sample_labels(rng, n)
bs = BatchSynth(int(sys.argv[3]))
bs(theta[:8])
t = time.perf_counter(); flux = bs(theta); t_syn = time.perf_counter() - t
err = np.full((ncrlb, flux.shape[1]), 0.07)
t = time.perf_counter(); crlb(theta[:ncrlb], err, chunk=4); t_crlb = time.perf_counter() - t
out = {"eager_spectra_per_s": n / t_syn, "crlb_spectra_per_s": ncrlb / t_crlb}
if sys.argv[5] == "1":
    t = time.perf_counter(); bc = BatchSynth(int(sys.argv[3]), compile=True)
    out["compile_s"] = time.perf_counter() - t
    bc(theta[:8])
    t = time.perf_counter(); bc(theta); out["compiled_spectra_per_s"] = n / (time.perf_counter() - t)
print(json.dumps(out))
"""


def _run(path: Path, args) -> dict:
    env = dict(os.environ, PYTHONPATH=str(path))
    out = subprocess.run([sys.executable, "-c", WORKER, str(args.n), str(args.crlb_n),
                          str(args.batch), str(args.threads), "1" if args.compile else "0"], env=env, cwd=path,
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--n", type=int, default=64)
    ap.add_argument("--crlb-n", type=int, default=4)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--v1-commit", default=V1_COMMIT)
    ap.add_argument("--compile", action="store_true", help="also time torch.compile'd synthesis")
    args = ap.parse_args()
    res: dict = {"n": args.n, "crlb_n": args.crlb_n, "batch": args.batch,
                 "threads": args.threads, "v1_commit": args.v1_commit,
                 "load_avg_1m_start": os.getloadavg()[0], "v1": {}, "v2": {}}
    with tempfile.TemporaryDirectory() as d:
        v1 = Path(d)
        export_tree(args.v1_commit, v1)
        for _ in range(args.repeat):
            for name, path in (("v1", v1), ("v2", ROOT)):
                r = _run(path, args)
                for k, v in r.items():
                    best = min if k == "compile_s" else max
                    res[name][k] = best(res[name].get(k, v), v)
    res["load_avg_1m_end"] = os.getloadavg()[0]
    for key in ("eager_spectra_per_s", "compiled_spectra_per_s"):
        if key in res["v1"]:
            res[f"v2_over_v1_{key}"] = res["v2"][key] / res["v1"][key]
    res["v2_over_v1_crlb"] = res["v2"]["crlb_spectra_per_s"] / res["v1"]["crlb_spectra_per_s"]
    out = ROOT / "bench" / "results" / "gen_v1_v2.json"
    out.write_text(json.dumps(res, indent=2) + "\n")
    print(json.dumps(res, indent=2))


if __name__ == "__main__":
    main()
