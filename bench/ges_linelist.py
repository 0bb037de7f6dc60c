"""Does a fuller line list (the Gaia-ESO list, `data/make_linelist.py --source ges`) give
generator v2 the log g information a real synthesis code has? (issue 11 item 4)

Side by side in one run, for the shipped list (a) and each candidate list given:

* **log g Fisher information** at i = 21.5 (k = 1.42, the noise model's errors on each
  list's own noiseless spectrum) of the six benchmark stars and the two warm metal-poor
  stars of bench/gravity_information_turbospectrum.py: 1-D (F_gg, log g alone free) and
  5-D (1/[F⁻¹]_gg) from the exact Jacobian; for the two warm stars also the ±0.25 dex
  central-difference 1-D information per wavelength window, next to Turbospectrum's
  (read from bench/results/gravity_information_ts_v22.json: same θ, same differences);
* **band-averaged absorption** ⟨1 − F/F_c⟩ over 7100–8850 Å of the six benchmark stars
  against Turbospectrum's reference spectra (data/benchmark_stars; theirs includes CN
  lines, ours is the residual without molecules);
* **the benchmark EW table** (engine/generator/benchmark.py tolerances, as
  tests/test_benchmark_stars.py): EWs and contrasts within tolerance;
* **cost**: synthesis CPU s/spectrum (float32, batches of 16, eager) and exact-CRLB CPU
  s/spectrum (the Fisher model's explicit Jacobian, chunks of 16, eager), alternating the
  lists, best of `--repeat`; ratio to (a).

Why: the Turbospectrum comparison put part of the warm dwarf's missing information in weak
lines blueward of 8200 Å, which the linemake list does not have.

usage: python bench/ges_linelist.py --list NAME=PATH [--list …] [--json OUT] [--repeat 2]
       python bench/ges_linelist.py --list … --diagnose-ts TS_WORK [--json OUT]   (see diagnose_ts)
       python bench/ges_linelist.py --list … --warm-draws [--json OUT]            (see warm_draws)"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

MAG, K_NOISE, STEP = 21.5, 1.42, 0.25
WARM = {"warm giant": (5250.0, 3.0, -1.5, 0.4, 0.0), "warm dwarf": (5500.0, 4.25, -1.5, 0.4, 0.0)}
TS_JSON = ROOT / "bench" / "results" / "gravity_information_ts_v22.json"


def stars() -> dict[str, np.ndarray]:
    from engine.generator import benchmark as bm

    bench = bm.load_benchmarks()
    out = {s: bench[s]["theta"] for s in bm.STARS}
    out.update({k: np.array(v) for k, v in WARM.items()})
    return out


def fisher_info(lines, thetas: np.ndarray) -> dict[str, np.ndarray]:
    """1-D and 5-D log g information (dex⁻²) per star from the exact Jacobian."""
    import torch

    from engine.generator import grids
    from engine.generator.fisher import fisher_matrix, jacobian
    from engine.generator.lte.synth import JACOBIAN_DTYPE, ForwardModel
    from engine.generator.noise import error_from_flux

    model = ForwardModel(lines, normalise="smooth", dtype=JACOBIAN_DTYPE, analytic_jvp=True)
    mu, jac = jacobian(thetas, model)
    err = error_from_flux(mu.numpy(), grids.wave(), np.full(len(thetas), MAG),
                          np.full(len(thetas), K_NOISE))
    f = fisher_matrix(jac, torch.as_tensor(err)).numpy()
    return {"info_1d": f[:, 1, 1], "info_5d": 1.0 / np.linalg.inv(f)[:, 1, 1]}


def central_difference(lines) -> dict:
    """±0.25 dex 1-D information of the warm stars per window (as the Turbospectrum bench)."""
    import torch

    from engine.generator import grids
    from engine.generator.lte.synth import ForwardModel
    from engine.generator.noise import error_from_flux
    from warm_metal_poor_fisher import windows

    wave = grids.wave()
    masks = windows(wave)
    model = ForwardModel(lines, dtype=torch.float64)
    out = {}
    for name, th in WARM.items():
        t = torch.tensor([[th[0], th[1] - STEP, *th[2:]], [th[0], th[1] + STEP, *th[2:]]],
                         dtype=torch.float64)
        with torch.no_grad():
            g = model(t).numpy()
        err = error_from_flux(0.5 * (g[0] + g[1])[None], wave, np.array([MAG]), np.array([K_NOISE]))[0]
        info = ((g[1] - g[0]) / (2 * STEP) / err) ** 2
        out[name] = {"total": float(info.sum()),
                     "windows": {k: float(info[m].sum()) for k, m in masks.items()}}
    return out


def absorption_and_ews(lines, names: list[str], thetas: np.ndarray) -> dict:
    """⟨1 − F/F_c⟩ per benchmark star (ours, Turbospectrum's) and the EW table's score."""
    import torch

    from engine.generator import benchmark as bm
    from engine.generator import grids
    from engine.generator.lte.synth import ForwardModel

    bench = bm.load_benchmarks()
    model = ForwardModel(lines, dtype=torch.float64)
    th = torch.as_tensor(thetas)
    with torch.no_grad():
        flux = model(th).numpy()
        resid = model.residual(th).numpy()
    fine = model.fine_wave.numpy()
    band = (fine >= grids.wave()[0]) & (fine <= grids.wave()[-1])
    rows = []
    for i, star in enumerate(names):
        ref = bm.all_ews(bench["wave"], bench[star]["flux_pfs"])
        ours = bm.all_ews(grids.wave(), flux[i])
        for f in bm.FEATURES:
            r, g = float(ref[f.name]), float(ours[f.name])
            rows.append({"star": star, "feature": f.name, "ref": r, "gen": g,
                         "ok": bm.within(r, g, f)})
    con = [c for c in bm.contrasts(rows) if c["checked"]]
    return {"absorption": {s: {"generator": float(1.0 - resid[i, band].mean()),
                               "turbospectrum": float(1.0 - bench[s]["flux_cont"].mean())}
                           for i, s in enumerate(names)},
            "ew_ok": int(sum(r["ok"] for r in rows)), "ew_n": len(rows),
            "ew_misses": [f"{r['star']} {r['feature']} ({r['gen']:.3f} vs {r['ref']:.3f})"
                          for r in rows if not r["ok"]],
            "contrast_ok": int(sum(c["ok"] for c in con)), "contrast_n": len(con),
            "ew_rows": rows}


def cost(lines, theta: np.ndarray, n_crlb: int) -> dict:
    """CPU s per spectrum: eager float32 synthesis (batches of 16) and exact CRLB Jacobian."""
    import torch

    from engine.generator.fisher import jacobian
    from engine.generator.lte.synth import JACOBIAN_DTYPE, ForwardModel

    model = ForwardModel(lines, dtype=torch.float32)
    th = torch.as_tensor(theta, dtype=torch.float32)
    with torch.no_grad():
        model(th[:16])                                    # warm-up
        c = time.process_time()
        for s in range(0, len(th), 16):
            model(th[s:s + 16])
        synth = (time.process_time() - c) / len(th)
    fm = ForwardModel(lines, normalise="smooth", dtype=JACOBIAN_DTYPE, analytic_jvp=True)
    jacobian(theta[:2], fm)
    c = time.process_time()
    for s in range(0, n_crlb, 16):
        jacobian(theta[s:min(s + 16, n_crlb)], fm)
    return {"synth_cpu_s": synth, "crlb_cpu_s": (time.process_time() - c) / n_crlb,
            "n_lines": len(lines)}


def run(lists: dict[str, Path], repeat: int, n_synth: int, n_crlb: int) -> dict:
    import torch

    from engine.generator.lte.linelist import load_linelist
    from engine.generator.physics import generator_version
    from engine.generator.priors import sample_labels

    torch.set_num_threads(2)
    st = stars()
    names = list(st)
    thetas = np.stack([st[n] for n in names]).astype(np.float64)
    bench_names = names[:6]
    loaded = {k: load_linelist(p) for k, p in lists.items()}
    theta_cost, _ = sample_labels(np.random.default_rng(0), max(n_synth, n_crlb))
    out = {"generator_version": generator_version("lte"), "mag": MAG, "k": K_NOISE,
           "stars": {n: thetas[i].tolist() for i, n in enumerate(names)},
           "lists": {k: {"path": str(p), "n_lines": len(loaded[k]),
                         "bytes": os.path.getsize(p)} for k, p in lists.items()},
           "turbospectrum": json.loads(TS_JSON.read_text())["stars"], "results": {}}
    for key, lines in loaded.items():
        t0 = time.perf_counter()
        fi = fisher_info(lines, thetas)
        res = {"info_1d": dict(zip(names, fi["info_1d"].tolist())),
               "info_5d": dict(zip(names, fi["info_5d"].tolist())),
               "central_difference": central_difference(lines)}
        res.update(absorption_and_ews(lines, bench_names, thetas[:6]))
        res["wall_s"] = time.perf_counter() - t0
        out["results"][key] = res
        print(f"{key}: physics done in {res['wall_s']:.0f} s", file=sys.stderr)
    timings = {k: [] for k in loaded}
    for _ in range(repeat):                                # alternate the lists
        for key, lines in loaded.items():
            timings[key].append(cost(lines, theta_cost[:n_synth], n_crlb))
    base = next(iter(loaded))
    best = {k: {m: min(t[m] for t in v) for m in ("synth_cpu_s", "crlb_cpu_s")}
            for k, v in timings.items()}
    for k in best:
        best[k]["synth_ratio"] = best[k]["synth_cpu_s"] / best[base]["synth_cpu_s"]
        best[k]["crlb_ratio"] = best[k]["crlb_cpu_s"] / best[base]["crlb_cpu_s"]
    out["cost"] = {"best": best, "runs": timings, "n_synth": n_synth, "n_crlb": n_crlb,
                   "repeat": repeat, "loadavg_end": os.getloadavg()[0]}
    return out


def markdown(res: dict) -> str:
    keys = list(res["results"])
    names = list(res["stars"])
    ts = res["turbospectrum"]
    head = "| " + " | ".join(keys) + " |"
    sep = "|---:" * len(keys) + "|"
    lines = [f"generator {res['generator_version']}, i = {res['mag']}, k = {res['k']}", "",
             "lists: " + "; ".join(f"{k} = {v['n_lines']} lines, {v['bytes'] / 1e3:.0f} kB"
                                   for k, v in res["lists"].items()), "",
             "log g information 1-D / 5-D (dex⁻², exact Jacobian)", "",
             "| star " + head, "|---" + sep]
    for n in names:
        lines.append(f"| {n} | " + " | ".join(
            f"{res['results'][k]['info_1d'][n]:.3f} / {res['results'][k]['info_5d'][n]:.3f}"
            for k in keys) + " |")
    lines += ["", "±0.25 dex central-difference 1-D information, warm stars (Turbospectrum first)", ""]
    for n, tsk in (("warm giant", "giant"), ("warm dwarf", "dwarf")):
        lines += [f"**{n}**", "", "| window | Turbospectrum " + head, "|---|---:" + sep]
        lines.append(f"| total | {ts[tsk]['info_turbospectrum']:.3f} | " + " | ".join(
            f"{res['results'][k]['central_difference'][n]['total']:.3f}" for k in keys) + " |")
        for w, v in ts[tsk]["windows"].items():
            lines.append(f"| {w} | {v['turbospectrum']:.3f} | " + " | ".join(
                f"{res['results'][k]['central_difference'][n]['windows'][w]:.3f}" for k in keys) + " |")
        lines.append("")
    lines += ["band-averaged 1 − F/F_c, 7100–8850 Å (Turbospectrum first)", "",
              "| star | Turbospectrum " + head, "|---|---:" + sep]
    for n in names[:6]:
        lines.append(f"| {n} | {res['results'][keys[0]]['absorption'][n]['turbospectrum']:.4f} | "
                     + " | ".join(f"{res['results'][k]['absorption'][n]['generator']:.4f}" for k in keys) + " |")
    lines += ["", "benchmark EW table | " + " | ".join(
        f"{k}: EWs {res['results'][k]['ew_ok']}/{res['results'][k]['ew_n']}, contrasts "
        f"{res['results'][k]['contrast_ok']}/{res['results'][k]['contrast_n']}" for k in keys), ""]
    for k in keys:
        lines.append(f"misses {k}: " + "; ".join(res["results"][k]["ew_misses"]))
    c = res["cost"]
    lines += ["", f"cost (CPU s/spectrum, best of {c['repeat']}; {c['n_synth']} synth, "
              f"{c['n_crlb']} CRLB; load {c['loadavg_end']:.1f})", "",
              "| list | synthesis | ratio | exact CRLB | ratio |", "|---|---:|---:|---:|---:|"]
    for k, v in c["best"].items():
        lines.append(f"| {k} | {v['synth_cpu_s']:.3f} | {v['synth_ratio']:.2f} | "
                     f"{v['crlb_cpu_s']:.3f} | {v['crlb_ratio']:.2f} |")
    return "\n".join(lines)


def diagnose_ts(work: Path, lists: dict[str, Path]) -> dict:
    """Where the warm dwarf's information gap blueward of 8200 Å sits, from Turbospectrum's
    ±0.25 dex spectra (`tsfull_<star>_{lo,hi}.npy` of bench/gravity_information_turbospectrum.py
    in `work`): 1-D information per 40 Å bin (the five largest in Turbospectrum), the mean
    line absorption ⟨1 − F/F_c⟩ blueward of 8200 Å, and the gravity response of the
    7140–7160 Å window (Ca I 7148, λ_air) as EW of F/F_c at log g ∓ 0.25."""
    import torch

    from engine.generator import grids
    from engine.generator.lte.linelist import load_linelist
    from engine.generator.lte.synth import ForwardModel
    from engine.generator.noise import error_from_flux

    wave = grids.wave()
    dw = float(np.diff(wave).mean())
    blue, ca = wave < 8200.0, (wave > 7140.0) & (wave < 7160.0)
    bins = np.arange(7100.0, 8200.0, 40.0)
    out: dict = {}
    for star, th in (("dwarf", WARM["warm dwarf"]), ("giant", WARM["warm giant"])):
        ts = [np.load(work / f"tsfull_{star}_{t}.npy") for t in ("lo", "hi")]
        err = error_from_flux(0.5 * (ts[0][0] + ts[1][0])[None], wave, np.array([MAG]),
                              np.array([K_NOISE]))[0]
        sides = {"turbospectrum": (ts[0][0], ts[1][0], ts[0][1], ts[1][1])}
        for key, path in lists.items():
            model = ForwardModel(load_linelist(path), dtype=torch.float64)
            t = torch.tensor([[th[0], th[1] - STEP, *th[2:]], [th[0], th[1] + STEP, *th[2:]]],
                             dtype=torch.float64)
            with torch.no_grad():
                g = model(t).numpy()
                r = (model.lsf(model.fine_flux(t, True, False))
                     / model.lsf(model.fine_flux(t, False, False))).numpy()
            sides[key] = (g[0], g[1], r[0], r[1])
        info = {k: ((v[1] - v[0]) / (2 * STEP) / err) ** 2 for k, v in sides.items()}
        per_bin = {k: [float(i[(wave >= b) & (wave < b + 40.0) & blue].sum()) for b in bins]
                   for k, i in info.items()}
        top = np.argsort(per_bin["turbospectrum"])[::-1][:5]
        out[star] = {
            "info_blue": {k: float(i[blue].sum()) for k, i in info.items()},
            "top_bins": {f"{bins[j]:.0f}–{bins[j] + 40:.0f}": {k: v[j] for k, v in per_bin.items()}
                         for j in top},
            "absorption_blue": {k: float(1.0 - 0.5 * (v[2][blue] + v[3][blue]).mean())
                                for k, v in sides.items()},
            "ew_7140_7160_lo_hi": {k: [float((1.0 - v[2][ca]).sum() * dw),
                                       float((1.0 - v[3][ca]).sum() * dw)] for k, v in sides.items()}}
    return out


def warm_draws(lists: dict[str, Path], n: int = 192, seed: int = 0) -> dict:
    """Median σ(log g) 1-D and 5-D at i = 21.5 over the warm metal-poor draws of
    `per_mag_figures(n, seed)` (T_eff 4500–6000 K, [M/H] −2…−1; the 31 stars of
    bench/warm_metal_poor_fisher.py at n = 192), per list."""
    import torch

    from engine.eval.bins import assign_teff_mh
    from engine.generator import grids
    from engine.generator.fisher import fisher_matrix, jacobian
    from engine.generator.lte.linelist import load_linelist
    from engine.generator.lte.synth import JACOBIAN_DTYPE, ForwardModel
    from engine.generator.noise import NoiseConfig, draw_k, error_from_flux
    from engine.generator.priors import sample_labels

    rng = np.random.default_rng(seed)
    theta, _ = sample_labels(rng, n)
    k = draw_k(rng, n, NoiseConfig())
    sel = np.where(np.isin(assign_teff_mh(theta[:, 0], theta[:, 2]), (3, 6)))[0]
    out = {"n": n, "seed": seed, "n_stars": len(sel), "lists": {}}
    for key, path in lists.items():
        model = ForwardModel(load_linelist(path), normalise="smooth", dtype=JACOBIAN_DTYPE,
                             analytic_jvp=True)
        mus, jacs = zip(*(jacobian(theta[sel[s:s + 16]], model) for s in range(0, len(sel), 16)))
        mu, jac = torch.cat(mus), torch.cat(jacs)
        err = error_from_flux(mu.numpy(), grids.wave(), np.full(len(sel), MAG), k[sel])
        f = fisher_matrix(jac, torch.as_tensor(err)).numpy()
        s1 = 1.0 / np.sqrt(f[:, 1, 1])
        s5 = np.sqrt(np.linalg.inv(f)[:, 1, 1])
        out["lists"][key] = {"sigma_1d_median": float(np.median(s1)),
                             "sigma_5d_median": float(np.median(s5)),
                             "sigma_5d": s5.tolist()}
        print(f"{key}: median σ(log g) 1-D {np.median(s1):.3f}, 5-D {np.median(s5):.3f} "
              f"({len(sel)} stars)", file=sys.stderr)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--list", action="append", default=[],
                    help="NAME=PATH of a line list CSV (the shipped list is always first, as 'a')")
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--n-synth", type=int, default=32)
    ap.add_argument("--n-crlb", type=int, default=16)
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--diagnose-ts", type=Path, default=None, metavar="WORK",
                    help="only the Turbospectrum diagnosis of the warm stars (tsfull_*.npy in WORK)")
    ap.add_argument("--warm-draws", action="store_true",
                    help="only the median σ(log g) over the warm metal-poor draws (warm_draws)")
    a = ap.parse_args()
    from engine.generator.lte.linelist import LINELIST_PATH

    lists = {"a: shipped": LINELIST_PATH}
    for item in a.list:
        name, path = item.split("=", 1)
        lists[name] = Path(path)
    if a.warm_draws:
        import torch

        torch.set_num_threads(2)
        res = warm_draws(lists)
        if a.json:
            a.json.write_text(json.dumps(res, indent=1))
        return
    if a.diagnose_ts:
        import torch

        torch.set_num_threads(2)
        res = diagnose_ts(a.diagnose_ts, lists)
        print(json.dumps(res, indent=1))
        if a.json:
            a.json.write_text(json.dumps(res, indent=1))
        return
    res = run(lists, a.repeat, a.n_synth, a.n_crlb)
    print(markdown(res))
    if a.json:
        a.json.write_text(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()
