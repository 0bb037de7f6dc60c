"""The research's Fisher ceiling protocol on the node lattice (`logg-engine data calibrate
--grid`; ORIGINAL_SYSTEM.md §6.2, docs/generator-v2.md, "Grid protocol").

Why a second estimator: the issue's calibration targets (R²_max 0.99/0.87/0.70/0.26, σ3D
0.12/0.42/0.66/1.03, Schur 0.58) are medians over the 30,182 BOSZ grid points with the
Jacobian from central differences along the grid axes with the grid step, at fixed
observing conditions per magnitude. `data calibrate` (calibrate.per_mag_figures) draws
192 prior points and uses the exact Jacobian: a different estimator of a different
median. This one repeats the research's recipe on generator v2's node lattice:

* every one of the 30,240 nodes (the box holds all BOSZ nodes, none missing);
* J = np.gradient of the node spectra along each axis with the grid step (central
  inside, one-sided at the box edges: the research's edge treatment is not documented,
  it dropped 27 edge points);
* Σ = diag(error²), error from noise.error_from_flux at the magnitude, with one k (the
  source-count scale) per magnitude: by default the k at which the lattice's median
  per-pixel SNR equals the research grid sets' SNR at that magnitude (87.4 / 24.0 / 7.1 /
  4.6 / 3.0 / 1.9: the grids were simulated at fixed conditions — seeing 1.0″, zenith
  22.5°, 4 × 900 s — that differ from the training sets' drawn ones, and each Fisher point
  of the research is labelled by that SNR); `snr="k0"` uses NoiseConfig().k0 instead
  (the training sets' typical conditions: 3–9 % lower SNR on v2.2's lattice);
* per magnitude (18/20/21.5/22/22.5/23): median per-pixel SNR (median over nodes of each
  node's median), median σ_CRLB(log g) marginal over T_eff and [M/H] (3-D), median 5-D
  R²_max = 1 − min(CRLB, Var)/Var with Var = 1.6667, Schur 3-D/5-D medians, and at 21.5
  the 5-D R²_max per T_eff × [M/H] bin.

Memory stays bounded: the lattice is processed in T_eff slabs (one slab's J is 3,024 ×
4,096 × 5 float32 = 0.25 GB; the whole J would be 2.5 GB), the Fisher sums in chunks."""

from __future__ import annotations

from pathlib import Path
from collections.abc import Callable

import numpy as np

from engine.events import Callbacks, emit
from engine.generator.calibrate import (TARGET_R2MAX_5D, TARGET_SCHUR_3D, TARGET_SCHUR_5D,
                                        TARGET_SIGMA_3D, TARGET_SNR_MED, VAR_GRID, Figure,
                                        bin_figures)

GRID_MAGS = (18.0, 20.0, 21.5, 22.0, 22.5, 23.0)
FISHER_CHUNK = 512          # nodes per float64 Fisher sum: (512, 4096, 5) float64 = 84 MB
ErrorFn = Callable[[np.ndarray, float], np.ndarray]   # (flux (m, P), mag) → error (m, P)


def fixed_error(k: float | None = None) -> ErrorFn:
    """error_from_flux at one magnitude with one k for every spectrum (default k0)."""
    from engine.generator import grids
    from engine.generator.noise import NoiseConfig, error_from_flux
    kk = NoiseConfig().k0 if k is None else float(k)
    wave = grids.wave()

    def error(flux: np.ndarray, mag: float) -> np.ndarray:
        n = len(flux)
        return error_from_flux(flux, wave, np.full(n, mag), np.full(n, kk))
    return error


SNR_MATCH_STRIDE = 16      # every 16th stored node (1,890) sets k; the figure uses all


def snr_matched_k(lattice, mags: tuple[float, ...] = GRID_MAGS,
                  targets: dict[float, float] | None = None,
                  stride: int = SNR_MATCH_STRIDE) -> dict[float, float]:
    """Per magnitude the k at which the median over nodes of each node's median per-pixel
    SNR (the figure's own definition) equals `targets` (default the research grid's SNR,
    calibrate.TARGET_SNR_MED); k0 where there is no target. Bisection in log k: the SNR
    of error_from_flux grows monotonically with k at fixed flux and magnitude."""
    from engine.generator import grids
    from engine.generator.noise import NoiseConfig, error_from_flux
    targets = TARGET_SNR_MED if targets is None else targets
    k0 = NoiseConfig().k0
    flux = np.asarray(lattice.flux[::max(int(stride), 1)], np.float64)
    wave, n = grids.wave(), len(flux)

    def snr(k: float, mag: float) -> float:
        err = error_from_flux(flux, wave, np.full(n, mag), np.full(n, k))
        return float(np.median(np.median(flux / err, axis=1)))

    out = {}
    for mag in mags:
        t = targets.get(mag)
        if t is None:
            out[mag] = k0
            continue
        lo, hi = np.log(k0 / 16), np.log(k0 * 16)
        for _ in range(40):                       # 2⁻⁴⁰ of the bracket: exact to rounding
            mid = 0.5 * (lo + hi)
            lo, hi = (mid, hi) if snr(float(np.exp(mid)), mag) < t else (lo, mid)
        out[mag] = float(np.exp(0.5 * (lo + hi)))
    return out


def check_grid_snr(snr: str) -> str:
    """`snr` if it names a grid noise setting (research | k0), else a SpecError."""
    if snr not in ("research", "k0"):
        from engine.errors import SpecError
        raise SpecError(f"--grid-snr must be research or k0, not {snr!r}", key="grid-snr")
    return snr


def matched_error(ks: dict[float, float]) -> ErrorFn:
    """error_from_flux with the magnitude's own k (snr_matched_k)."""
    errs = {mag: fixed_error(k) for mag, k in ks.items()}

    def error(flux: np.ndarray, mag: float) -> np.ndarray:
        return errs[mag](flux, mag)
    return error


def slab_jacobians(lattice):
    """Per T_eff node i: (flat node numbers (M,), node flux (M, P) float32, J (M, P, 5)
    float32 in PARAMS units) by np.gradient semantics along every axis (edge_order 1)."""
    from engine.generator.lte.node_store import N_NODES, STEP
    n0, rest = N_NODES[0], N_NODES[1:]
    m = int(np.prod(rest))

    def cube(i: int) -> np.ndarray:
        flat = np.arange(i * m, (i + 1) * m)
        return lattice.flux[lattice.rows(flat)].reshape(rest + (-1,))

    for i in range(n0):
        c = cube(i)
        lo, hi = max(i - 1, 0), min(i + 1, n0 - 1)
        d0 = (cube(hi) - cube(lo)) / np.float32((hi - lo) * STEP[0])
        jac = np.stack([d0] + [np.gradient(c, np.float32(STEP[a]), axis=a - 1)
                               for a in range(1, 5)], -1)
        yield np.arange(i * m, (i + 1) * m), c.reshape(m, -1), jac.reshape(m, c.shape[-1], 5)


def grid_arrays(lattice, mags: tuple[float, ...] = GRID_MAGS, error_fn: ErrorFn | None = None,
                callbacks: Callbacks | None = None) -> dict:
    """Per node and magnitude: snr (median flux/error), r2 (5-D R²_max), s3 (3-D σ_CRLB),
    schur3, schur5; plus the nodes' θ. Every node must be in `lattice`."""
    import torch

    from engine.generator.fisher import crlb_from_fisher, fisher_matrix
    from engine.generator.lte.node_store import N_NODES, N_TOTAL, node_theta
    error_fn = fixed_error() if error_fn is None else error_fn
    keys = ("snr", "r2", "s3", "schur3", "schur5")
    out = {mag: {k: np.full(N_TOTAL, np.nan) for k in keys} for mag in mags}
    emit(callbacks, "start", total=N_NODES[0], unit="slabs", what="grid Fisher")
    for i, (flat, flux, jac) in enumerate(slab_jacobians(lattice)):
        for s in range(0, len(flat), FISHER_CHUNK):
            sl, idx = slice(s, s + FISHER_CHUNK), flat[s:s + FISHER_CHUNK]
            fl = flux[sl].astype(np.float64)
            j64 = torch.from_numpy(jac[sl].astype(np.float64))
            for mag in mags:
                err = error_fn(fl, mag)
                fis = fisher_matrix(j64, torch.from_numpy(np.asarray(err, np.float64)))
                r5, r3 = crlb_from_fisher(fis), crlb_from_fisher(fis, (0, 1, 2))
                o = out[mag]
                o["snr"][idx] = np.median(fl / err, axis=1)
                o["r2"][idx] = 1.0 - np.minimum(r5.crlb_log_g, VAR_GRID) / VAR_GRID
                o["s3"][idx] = np.sqrt(r3.crlb_log_g)
                o["schur3"][idx], o["schur5"][idx] = r3.schur, r5.schur
        emit(callbacks, "progress", done=i + 1, total=N_NODES[0], step="grid Fisher")
    return {"theta": node_theta(np.arange(N_TOTAL)), "mags": out}


def grid_figures(lattice, mags: tuple[float, ...] = GRID_MAGS, error_fn: ErrorFn | None = None,
                 callbacks: Callbacks | None = None, snr: str = "research") -> list[Figure]:
    """The grid protocol's figures beside the research's (Figure, as `data calibrate`).
    snr: "research" (k per magnitude matched to the research grid's SNR) or "k0"; ignored
    when `error_fn` is given."""
    ks: dict[float, float] = {}
    if error_fn is None:
        if check_grid_snr(snr) == "research":
            ks = snr_matched_k(lattice, mags)
            error_fn = matched_error(ks)
    res = grid_arrays(lattice, mags, error_fn, callbacks)
    n = len(res["theta"])
    figs = []
    rows = (("median per-pixel SNR", "snr", TARGET_SNR_MED, 0.15, True),
            ("σ_CRLB(log g) 3-D median", "s3", TARGET_SIGMA_3D, 0.2, True),
            ("R²_max 5-D median", "r2", TARGET_R2MAX_5D, 0.05, False),
            ("Schur 3-D median", "schur3", TARGET_SCHUR_3D, 0.1, False),
            ("Schur 5-D median", "schur5", TARGET_SCHUR_5D, 0.1, False))
    for mag in mags:
        o = res["mags"][mag]
        bad = int(np.isnan(o["r2"]).sum())
        note = f"{n} lattice nodes, grid central differences" + (
            f"; k {ks[mag]:.3f} (SNR matched to the research grid's)" if mag in ks else "") + (
            f"; {bad} not positive definite (NaN, left out)" if bad else "")
        for name, key, targets, tol, relative in rows:   # tolerance: × target or absolute
            t = targets.get(mag)
            figs.append(Figure(f"grid mag {mag:g}: {name}", float(np.nanmedian(o[key])), t,
                               None if t is None else (tol * t if relative else tol), note))
        if mag == 21.5:
            figs += [Figure(f.name.replace("mag", "grid mag", 1), f.value, f.target,
                            f.tolerance, f.note.replace("spectra", "nodes"))
                     for f in bin_figures(res["theta"], o["r2"], mag)]
    return figs


def dataset_lattice(dataset, workspace: str | Path | None = None, callbacks=None):
    """The workspace's node lattice of the generator version that built `dataset`, opened
    read-only; SpecError when the dataset is not a v2 build, DataError when the lattice is
    missing or incomplete (it is never built here: that takes about an hour)."""
    from engine.errors import DataError, SpecError
    from engine.generator.lte.node_store import N_TOTAL, NodeLattice, lattice_key, lattice_root
    from engine.generator.physics import generator_version, physics_of_version
    version = (dataset.manifest or {}).get("generator_version")
    if physics_of_version(version) != "lte":
        raise SpecError(f"--grid needs a generator v2 dataset (--physics lte); "
                        f"{dataset.name} was built by generator {version or 'unknown'}",
                        key="grid", hint="calibrate it without --grid, or build one with "
                        "`logg-engine data generate --physics lte`")
    root = lattice_root(workspace)
    current = str(version) == generator_version("lte")
    if current:
        key = lattice_key()
    else:
        found = sorted(p.name for p in root.glob(f"v{version}-*") if p.is_dir()) \
            if root.exists() else []
        if len(found) != 1:
            raise DataError(f"no node lattice of generator {version} in {root}"
                            + (f" (several: {', '.join(found)})" if found else ""),
                            path=root, key="lattice", hint="this logg builds only the "
                            f"lattice of generator {generator_version('lte')}: calibrate a "
                            "dataset built by it")
        key = found[0]
    lat = NodeLattice(root, key=key, read_only=True, callbacks=callbacks)
    if lat.n_stored < N_TOTAL:
        how = ("`logg-engine data lattice build` builds it (resumable; ~60 min on 2 cores "
               "for all nodes, ~0.5 GB)" if current else
               "this logg cannot build an older generator's lattice")
        raise DataError(f"the node lattice {key} holds {lat.n_stored} of {N_TOTAL} nodes; "
                        "the grid protocol needs all of them", path=root / key,
                        key="lattice", hint=how + "; `data calibrate --grid` never builds it")
    return lat


def calibrate_grid(dataset, workspace: str | Path | None = None,
                   callbacks: Callbacks | None = None, snr: str = "research") -> list[Figure]:
    """SNR figures of `dataset` and the grid protocol's figures on its lattice."""
    from engine.generator.calibrate import snr_figures
    lat = dataset_lattice(dataset, workspace, callbacks)
    return snr_figures(dataset) + grid_figures(lat, callbacks=callbacks, snr=snr)
