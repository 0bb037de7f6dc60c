"""The research's Fisher ceiling protocol on the workspace's node lattice, both noise
settings, side by side (engine/generator/calibrate_grid.py; docs/generator-v2.md, "The
research's grid protocol"): per magnitude the SNR matched to the research grid's
(the default of `data calibrate --grid`) and k0 (the training sets' typical conditions).
Needs the complete lattice of this logg's generator version (`logg-engine data lattice
build`). Writes bench/results/grid_protocol.json.

    python bench/grid_protocol.py [--workspace WS] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--workspace", default=os.environ.get("LOGG_WORKSPACE", str(ROOT / "workspace")))
    ap.add_argument("--json", default=str(ROOT / "bench" / "results" / "grid_protocol.json"))
    a = ap.parse_args()
    from engine.generator.calibrate_grid import grid_figures
    from engine.generator.lte.node_store import NodeLattice, lattice_key, lattice_root
    from engine.generator.physics import generator_version

    lat = NodeLattice(lattice_root(a.workspace), key=lattice_key(), read_only=True)
    out = {"generator_version": generator_version("lte"), "lattice_key": lat.key,
           "nodes": lat.n_stored, "load_1min_before": os.getloadavg()[0]}
    for snr in ("research", "k0"):
        t = time.time()
        figs = grid_figures(lat, snr=snr)
        out[snr] = {"seconds": round(time.time() - t, 1), "figures": [f.to_dict() for f in figs]}
        print(f"--- snr={snr} ({out[snr]['seconds']} s)")
        for f in figs:
            tgt = "" if f.target is None else f"  target {f.target:g} ± {f.tolerance:.3g}"
            mark = {True: "✓", False: "✗", None: ""}[f.ok()]
            print(f"{f.name:66s} {f.value:8.3f}{tgt} {mark}")
    Path(a.json).write_text(json.dumps(out, indent=1))
    print("wrote", a.json)


if __name__ == "__main__":
    main()
