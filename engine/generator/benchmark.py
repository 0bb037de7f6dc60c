"""Equivalent widths of the gravity-sensitive features, and the comparison of the built-in
generator with the Turbospectrum benchmark spectra in `data/benchmark_stars/` (issue 11,
item 3; the spectra and how they were made: data/benchmark_stars/README.md).

The EW routine is a Lick-style index, so that it needs no continuum model and gives the
same number on any rescaling of a spectrum (the pfsspec median-0.5 form, a continuum-
normalised form, raw F_λ): for each feature a central band and two side bands (air Å,
converted to vacuum with the generator's formula); the pseudo-continuum is the straight
line through the highest 20 % of each side band's pixels (mean flux at their mean
wavelength: the least blanketed pixels — a plain mean lets the blends of the side bands
cancel weak lines such as K I — and unbiased on a sloped continuum); the EW is
Σ (1 − F/F_c) Δλ over the output pixels whose centres fall in the central band. Bands are
wide enough to hold the R≈5000 line (FWHM 1.7 Å) and the damping wings of the Ca II
triplet; P13 (8665 Å) lies inside the Ca II 8662 band, so it is not measured separately.

numpy only at import; `generator_spectra` imports the generator (torch) when called."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from engine.generator import grids

BENCHMARK_FILE = Path(__file__).resolve().parents[2] / "data" / "benchmark_stars" / "benchmark_stars.npz"

CONT_TOP = 0.2

# the six benchmark stars (the *_marcs / *_ksun rows in the file are atmosphere checks)
STARS = ("sun", "arcturus", "cool_dwarf", "cool_giant", "mp_giant", "dwarf_6000")


@dataclass(frozen=True)
class Feature:
    """A central band and two side bands, air Å (converted to vacuum on use)."""
    name: str
    band: tuple[float, float]
    blue: tuple[float, float]
    red: tuple[float, float]
    rel_tol: float     # allowed |EW_gen − EW_ref| / EW_ref ...
    abs_tol: float     # ... or this many Å, whichever is larger


FEATURES = (
    Feature("Ca II 8498", (8490.0, 8506.0), (8474.0, 8484.0), (8513.0, 8522.0), 0.20, 0.15),
    Feature("Ca II 8542", (8527.0, 8557.0), (8513.0, 8522.0), (8563.0, 8577.0), 0.20, 0.15),
    Feature("Ca II 8662", (8647.0, 8677.0), (8619.0, 8642.0), (8700.0, 8725.0), 0.20, 0.15),
    Feature("Na I 8183/8195", (8178.0, 8200.0), (8164.0, 8173.0), (8203.0, 8215.0), 0.30, 0.10),
    Feature("Mg I 8807", (8802.0, 8811.0), (8776.0, 8792.0), (8815.0, 8825.0), 0.30, 0.10),
    Feature("K I 7699", (7696.0, 7702.0), (7680.0, 7692.0), (7705.0, 7717.0), 0.30, 0.10),
    Feature("P12 8750", (8744.0, 8757.0), (8725.0, 8740.0), (8760.0, 8770.0), 0.35, 0.10),
    Feature("P14 8598", (8592.0, 8605.0), (8580.0, 8589.0), (8608.0, 8617.0), 0.35, 0.10),
)
FEATURE_BY_NAME = {f.name: f for f in FEATURES}

# dwarf − giant (or hot − cool) pairs whose EW difference must keep its sign and size
CONTRASTS = (("cool_dwarf", "cool_giant"), ("dwarf_6000", "sun"), ("arcturus", "mp_giant"))
CONTRAST_REL_TOL = 0.5     # |Δ_gen − Δ_ref| ≤ 0.5 |Δ_ref| ...
CONTRAST_MIN = 0.1         # ... checked only where |Δ_ref| ≥ 0.1 Å (else it is not a contrast)


def _vac(band: tuple[float, float]) -> tuple[float, float]:
    lo, hi = grids.air_to_vacuum(np.array(band))
    return float(lo), float(hi)


def equivalent_width(wave: np.ndarray, flux: np.ndarray, feature: Feature) -> np.ndarray:
    """EW (Å) of `feature` in `flux` (…, n_pixels) sampled at pixel centres `wave` (vacuum
    Å); positive for absorption. Works on any row scaling."""
    wave = np.asarray(wave, dtype=np.float64)
    flux = np.asarray(flux, dtype=np.float64)
    dl = np.gradient(wave)
    levels, centres = [], []
    for side in (feature.blue, feature.red):
        lo, hi = _vac(side)
        m = (wave >= lo) & (wave <= hi)
        if not m.any():
            raise ValueError(f"{feature.name}: side band {side} Å (air) has no pixels")
        lev, cen = _top_pixels(wave[m], flux[..., m])
        levels.append(lev)
        centres.append(cen)
    lo, hi = _vac(feature.band)
    m = (wave >= lo) & (wave <= hi)
    slope = (levels[1] - levels[0]) / (centres[1] - centres[0])
    cont = levels[0][..., None] + slope[..., None] * (wave[m][None, :] - centres[0][..., None])
    cont = cont.reshape(flux[..., m].shape)
    return ((1.0 - flux[..., m] / cont) * dl[m]).sum(-1)


def _top_pixels(wave: np.ndarray, flux: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean flux and mean wavelength of the highest CONT_TOP of a side band's pixels: the
    least blanketed ones, and (both means taken together) a point on the continuum line
    even where the continuum slopes across the band."""
    k = max(1, int(np.ceil(CONT_TOP * wave.size)))
    flux2 = flux.reshape(-1, wave.size)
    top = np.argsort(flux2, axis=-1)[:, -k:]
    lev = np.take_along_axis(flux2, top, -1).mean(-1)
    cen = wave[top].mean(-1)
    return lev.reshape(flux.shape[:-1]), cen.reshape(flux.shape[:-1])


def all_ews(wave: np.ndarray, flux: np.ndarray) -> dict[str, np.ndarray]:
    return {f.name: equivalent_width(wave, flux, f) for f in FEATURES}


def load_benchmarks(path: Path = BENCHMARK_FILE) -> dict:
    """{'wave', 'meta', star: {'theta', 'flux_pfs', 'flux_cont'}} from the .npz."""
    if not path.exists():
        raise FileNotFoundError(f"{path} missing: run `make benchmarks` to regenerate it")
    with np.load(path, allow_pickle=False) as z:
        meta = json.loads(str(z["meta"]))
        out = {"wave": z["wave"], "meta": meta}
        for name, m in meta.items():
            if name.startswith("_"):
                continue
            out[name] = {"theta": np.array(m["theta"] + [m.get("c_m", 0.0)]),
                         "flux_pfs": z[f"{name}__flux_pfs"], "flux_cont": z[f"{name}__flux_cont"]}
    return out


def generator_spectra(thetas: np.ndarray, physics: str = "me") -> np.ndarray:
    """The built-in generator's noiseless pfsspec-normalised spectra (B, 4096) at θ rows
    (T_eff, log g, [M/H], [α/M], [C/M]) — the public `ForwardModel` of that physics
    (engine.generator.physics) at float64."""
    import torch

    from engine.generator.physics import synth_module

    model = synth_module(physics).ForwardModel(dtype=torch.float64)
    with torch.no_grad():
        return model(torch.as_tensor(np.asarray(thetas, dtype=np.float64))).numpy()


def compare(bench: dict | None = None, stars=STARS, physics: str = "me") -> list[dict]:
    """One row per star × feature: reference EW, generator EW, ratio and whether the
    difference is within the feature's tolerance."""
    bench = load_benchmarks() if bench is None else bench
    thetas = np.stack([bench[s]["theta"] for s in stars])
    gen = generator_spectra(thetas, physics)
    rows = []
    for i, star in enumerate(stars):
        ref = all_ews(bench["wave"], bench[star]["flux_pfs"])
        ours = all_ews(grids.wave(), gen[i])
        for f in FEATURES:
            r, g = float(ref[f.name]), float(ours[f.name])
            rows.append({"star": star, "feature": f.name, "ref": r, "gen": g,
                         "ratio": g / r if abs(r) > 1e-3 else float("nan"),
                         "ok": within(r, g, f)})
    return rows


def within(ref: float, gen: float, feature: Feature) -> bool:
    return abs(gen - ref) <= max(feature.rel_tol * abs(ref), feature.abs_tol)


def contrasts(rows: list[dict]) -> list[dict]:
    """Δ = EW(first) − EW(second) per CONTRASTS pair and feature, reference vs generator."""
    ew = {(r["star"], r["feature"]): (r["ref"], r["gen"]) for r in rows}
    out = []
    for a, b in CONTRASTS:
        for f in FEATURES:
            if (a, f.name) not in ew or (b, f.name) not in ew:
                continue
            d_ref = ew[(a, f.name)][0] - ew[(b, f.name)][0]
            d_gen = ew[(a, f.name)][1] - ew[(b, f.name)][1]
            checked = abs(d_ref) >= CONTRAST_MIN
            ok = (not checked) or (np.sign(d_gen) == np.sign(d_ref)
                                   and abs(d_gen - d_ref) <= CONTRAST_REL_TOL * abs(d_ref))
            out.append({"pair": f"{a} − {b}", "feature": f.name, "d_ref": d_ref,
                        "d_gen": d_gen, "checked": checked, "ok": bool(ok)})
    return out


def markdown(rows: list[dict], crows: list[dict], meta: dict | None = None) -> str:
    """The comparison as markdown tables (bench/benchmark_stars.py writes it)."""
    out = ["# Benchmark stars: generator vs Turbospectrum", "",
           ("EW (Å) by the Lick-style routine in `engine/generator/benchmark.py` on both "
           "spectra (R≈5000, 4096 vacuum pixels). ok = within the feature's tolerance "
           "(max(rel·EW_ref, abs))."), ""]
    if meta:
        out += [f"Reference: {meta.get('_settings', {}).get('code', '?')}", ""]
    out += ["| star | θ | feature | EW ref | EW gen | gen/ref | tol | ok |",
            "|---|---|---|---:|---:|---:|---|---|"]
    for r in rows:
        f = FEATURE_BY_NAME[r["feature"]]
        th = ""
        if meta and r["star"] in meta:
            t = meta[r["star"]]["theta"]
            th = f"{t[0]:.0f}/{t[1]:.2f}/{t[2]:+.2f}/{t[3]:+.2f}"
        out.append(f"| {r['star']} | {th} | {r['feature']} | {r['ref']:.3f} | {r['gen']:.3f} | "
                   f"{r['ratio']:.2f} | {f.rel_tol:.0%}/{f.abs_tol:.2f} Å | "
                   f"{'yes' if r['ok'] else '**no**'} |")
    n_ok = sum(r["ok"] for r in rows)
    out += ["", f"{n_ok}/{len(rows)} star×feature EWs within tolerance.", "",
            "## Contrasts Δ = EW(first) − EW(second)", "",
            (f"Checked where |Δ_ref| ≥ {CONTRAST_MIN} Å: same sign and |Δ_gen − Δ_ref| ≤ "
            f"{CONTRAST_REL_TOL:.0%}·|Δ_ref|."), "",
            "| pair | feature | Δ ref | Δ gen | checked | ok |", "|---|---|---:|---:|---|---|"]
    for c in crows:
        out.append(f"| {c['pair']} | {c['feature']} | {c['d_ref']:+.3f} | {c['d_gen']:+.3f} | "
                   f"{'yes' if c['checked'] else 'no'} | {'yes' if c['ok'] else '**no**'} |")
    n_chk = [c for c in crows if c["checked"]]
    out += ["", f"{sum(c['ok'] for c in n_chk)}/{len(n_chk)} checked contrasts right in sign and size."]
    return "\n".join(out) + "\n"
