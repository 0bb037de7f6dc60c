"""Where the gravity information of the warm metal-poor stars sits in the v2 generator, and
what it is degenerate with: per-star Fisher matrices at i = 21.5 for the draws of
`per_mag_figures(n, seed)` that fall in the T_eff 4500–6000 K, [M/H] −2…−1 bins.

For each star: σ(log g) with log g alone free, with each other parameter freed in turn,
and all five (the 5-D CRLB); the correlation of log g with each parameter in the 5-D
covariance; and where the marginal information sits: per pixel, the part of ∂μ/∂log g
that the other four derivatives cannot imitate (the residual of its weighted least-squares
projection on them), squared and weighted by 1/σ², summed over wavelength windows
(Ca II triplet cores and wings, Paschen members, Mg I 8807, Na I 8183/95, the Paschen
edge region, the rest). The window sums add up to 1/σ²_CRLB,5-D.

usage: python bench/warm_metal_poor_fisher.py [--n 192] [--seed 0] [--json OUT]"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

PARAM_NAMES = ("T_eff", "log g", "[M/H]", "[α/M]", "[C/M]")
LOGG = 1
# vacuum Å; CaT cores ±1.5 Å, wings 1.5–15 Å (the Paschen members inside excluded)
CAT = (8500.35, 8544.44, 8664.52)
PASCHEN = {"P11": 8865.22, "P12": 8752.88, "P13": 8667.40, "P14": 8600.76, "P15": 8547.73,
           "P16": 8504.82, "P17": 8469.58, "P18": 8440.28, "P19": 8415.63, "P20": 8394.71}


def windows(wave: np.ndarray) -> dict[str, np.ndarray]:
    """Boolean masks over the pixels, disjoint (first match wins, in this order)."""
    out: dict[str, np.ndarray] = {}
    taken = np.zeros(wave.shape, bool)

    def add(name, m):
        m = m & ~taken
        out[name] = m
        taken[:] |= m

    add("CaT cores (±1.5 Å)", np.any([np.abs(wave - c) < 1.5 for c in CAT], 0))
    add("P12–P20 (±2 Å)", np.any([np.abs(wave - c) < 2.0 for k, c in PASCHEN.items()
                                  if k != "P11"], 0))
    add("CaT wings (1.5–15 Å)", np.any([np.abs(wave - c) < 15.0 for c in CAT], 0))
    add("Mg I 8807 (±3 Å)", np.abs(wave - 8809.2) < 3.0)
    add("Na I 8183/8195 (±3 Å)", (np.abs(wave - 8185.5) < 3.0) | (np.abs(wave - 8197.1) < 3.0))
    add("Paschen edge 8206–8400 Å", (wave > 8200.0) & (wave < 8400.0))
    add("rest < 8200 Å", wave < 8200.0)
    add("rest > 8400 Å", np.ones_like(taken))
    return out


def analyse(n: int, seed: int, mag: float = 21.5) -> dict:
    import torch

    from engine.eval.bins import assign_teff_mh
    from engine.generator import grids
    from engine.generator.fisher import SCALE, fisher_matrix, jacobian
    from engine.generator.noise import NoiseConfig, draw_k, error_from_flux
    from engine.generator.physics import fisher_model, generator_version
    from engine.generator.priors import sample_labels

    rng = np.random.default_rng(seed)
    theta, _ = sample_labels(rng, n)
    k = draw_k(rng, n, NoiseConfig())
    b = assign_teff_mh(theta[:, 0], theta[:, 2])
    sel = np.where(np.isin(b, (3, 6)))[0]             # 4500–5250 and 5250–6000 K, [M/H] −2…−1
    model = fisher_model("lte")
    mus, jacs = [], []
    for s in range(0, len(sel), 16):
        mu, jac = jacobian(theta[sel[s:s + 16]], model)
        mus.append(mu)
        jacs.append(jac)
    mu, jac = torch.cat(mus), torch.cat(jacs)
    wave = grids.wave()
    err = error_from_flux(mu.numpy(), wave, np.full(len(sel), mag), k[sel])
    fis = fisher_matrix(jac, torch.as_tensor(err)).numpy()
    js = (jac.numpy() / np.asarray(SCALE)) / err[..., None]            # whitened (B, K, 5)
    masks = windows(wave)
    stars = []
    for i in range(len(sel)):
        f = fis[i]
        cov = np.linalg.inv(f)
        one = {PARAM_NAMES[p]: float(np.sqrt(np.linalg.inv(f[np.ix_([LOGG, p], [LOGG, p])])[0, 0]))
               for p in (0, 2, 3, 4)}
        others = [0, 2, 3, 4]
        a = js[i][:, others]
        coef, *_ = np.linalg.lstsq(a, js[i][:, LOGG], rcond=None)
        resid = js[i][:, LOGG] - a @ coef                                # what only log g does
        info = resid ** 2
        stars.append({
            "theta": theta[sel[i]].round(3).tolist(),
            "sigma_logg_alone": float(1.0 / np.sqrt(f[LOGG, LOGG])),
            "sigma_logg_with": one,
            "sigma_logg_5d": float(np.sqrt(cov[LOGG, LOGG])),
            "corr_logg": {PARAM_NAMES[p]: float(cov[LOGG, p] / np.sqrt(cov[LOGG, LOGG] * cov[p, p]))
                          for p in others},
            "info_share": {name: float(info[m].sum() / info.sum()) for name, m in masks.items()},
            "info_share_alone": {name: float((js[i][m, LOGG] ** 2).sum() / f[LOGG, LOGG])
                                 for name, m in masks.items()},
        })
    return {"generator_version": generator_version("lte"), "n": n, "seed": seed, "mag": mag,
            "stars": stars}


def summary(res: dict) -> str:
    st = res["stars"]

    def med(key: str) -> float:
        return float(np.median([s[key] for s in st]))

    lines = [f"generator {res['generator_version']}, {len(st)} warm metal-poor draws of "
             f"per_mag_figures({res['n']}, seed={res['seed']}), i = {res['mag']}",
             f"median σ(log g): alone {med('sigma_logg_alone'):.3f}, 5-D {med('sigma_logg_5d'):.3f}"]
    for p in ("T_eff", "[M/H]", "[α/M]", "[C/M]"):
        lines.append(f"  log g + {p:6s} free: σ {np.median([s['sigma_logg_with'][p] for s in st]):.3f}; "
                     f"5-D corr(log g, {p}) median {np.median([s['corr_logg'][p] for s in st]):+.2f}")
    lines.append("share of log g information (marginal 5-D | log g alone), median over stars:")
    for name in st[0]["info_share"]:
        lines.append(f"  {name:28s} {np.median([s['info_share'][name] for s in st]):.3f} | "
                     f"{np.median([s['info_share_alone'][name] for s in st]):.3f}")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=192)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    import torch

    torch.set_num_threads(2)
    res = analyse(args.n, args.seed)
    print(summary(res))
    if args.json:
        args.json.write_text(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()
