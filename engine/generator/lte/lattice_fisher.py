"""The Jacobian and CRLB of a lattice-built spectrum from the node lattice itself (issue 11
items 4–5; docs/generator-v2.md, "CRLB from the lattice").

Why: a snapped v2 row (`bosz-1m`) IS the lattice's interpolant at θ (lattice.py), so its
own Jacobian is available from the stored node spectra for the cost of a few gathers —
~8 ms per row on 2 loaded cores against ~0.5–2.5 s for the exact `jacfwd` CRLB (fisher.py;
bench/results/lattice_crlb.json) — and it is
what the research computed: central differences along the BOSZ grid axes with the grid
step (ORIGINAL_SYSTEM.md §6.2).

J = ∂μ/∂θ (PARAMS units, T_eff in K) per row, θ with at most one off-node label:

* along the free (off-node) axis: the derivative of the full interpolant — the
  Catmull–Rom cubic through the four nodes (clipped at the box edges as lattice.plan
  clips them) INCLUDING the renormalisation to median 0.5 of lattice.interpolate,
  differentiated analytically with the two middle-rank pixels that define the median held
  (exact almost everywhere; the median is piecewise linear in the spectrum).
* along every snapped axis a: the research's central difference
  [μ(θ + Δ_a e_a) − μ(θ − Δ_a e_a)] / 2Δ_a with the grid step Δ_a, each μ evaluated
  through the same interpolation at the row's free-axis value; at a box edge the
  one-sided difference [μ(θ ± Δ_a e_a) − μ(θ)] / Δ_a — np.gradient's semantics
  (edge_order=1). A row on every node gets plain grid central differences on all five
  axes, which is the research's grid protocol (calibrate_grid.py).

At a node the Catmull–Rom slope is the central difference too, so the free-axis
derivative joins the snapped-axis one continuously as the free label reaches a node.
F and the marginal CRLB then come from fisher.fisher_matrix / crlb_from_fisher, the same
units and scaling as the exact CRLB."""

from __future__ import annotations

import numpy as np

from engine.generator.lte.lattice import catmull_rom, interpolate, node_index, plan
from engine.generator.lte.node_store import LO, N_NODES, STEP, NodeLattice

CHUNK_ROWS = 256          # rows per pass: (256 rows × 10 points × 4096) float64 = 84 MB
_N = np.array(N_NODES)
_D = len(N_NODES)


def catmull_rom_slope(t: np.ndarray) -> np.ndarray:
    """d/dt of catmull_rom's weights (n, 4) at fraction t (per node step)."""
    t2 = t * t
    return 0.5 * np.stack([-3 * t2 + 4 * t - 1, 9 * t2 - 10 * t, -9 * t2 + 8 * t + 1,
                           3 * t2 - 2 * t], 1)


def _free_axis(theta: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(u node coordinates (n, 5), has_free (n,), free axis (n,); 0 where none)."""
    u, on = node_index(theta)
    off = ~on
    if (off.sum(1) > 1).any():
        raise ValueError("the lattice Jacobian needs rows with at most one off-node label "
                         "(priors.sample_labels(snap=True))")
    return u, off.any(1), np.where(off.any(1), np.argmax(off, 1), 0)


def _neighbours(theta: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """θ of the up/down grid neighbours along every axis (n, 5, 5) each, clipped to the
    box, and the step between them in grid units (n, 5): 2 inside, 1 at an edge (0 only
    on a one-node axis). The free axis' entries are unused (set to θ)."""
    u, has_free, free = _free_axis(theta)
    idx = np.clip(np.round(u).astype(np.int64), 0, _N - 1)
    up = np.minimum(idx + 1, _N - 1)
    dn = np.maximum(idx - 1, 0)
    eye = np.eye(_D, dtype=bool)[None]
    th_up = np.where(eye, (LO + STEP * up)[:, :, None], theta[:, None, :])
    th_dn = np.where(eye, (LO + STEP * dn)[:, :, None], theta[:, None, :])
    span = (up - dn).astype(np.float64)
    is_free = has_free[:, None] & (np.arange(_D)[None] == free[:, None])
    th_up[is_free] = theta[np.nonzero(is_free)[0]]
    th_dn[is_free] = theta[np.nonzero(is_free)[0]]
    return th_up, th_dn, np.where(is_free, 0.0, span)


def jacobian_nodes(theta: np.ndarray) -> np.ndarray:
    """Flat numbers of every node the lattice Jacobian of rows θ reads (the builder
    synthesises them before a `--crlb-method lattice` CRLB pass): the row's own four
    free-axis nodes and those of its grid neighbours along each snapped axis."""
    theta = np.asarray(theta, np.float64)
    th_up, th_dn, _ = _neighbours(theta)
    pts = np.concatenate([theta, th_up.reshape(-1, _D), th_dn.reshape(-1, _D)])
    return np.unique(plan(pts)[0])


def jacobian(theta: np.ndarray, lattice: NodeLattice, chunk: int = CHUNK_ROWS
             ) -> tuple[np.ndarray, np.ndarray]:
    """(μ (n, P), J (n, P, 5)) float64 of the lattice-built spectra at θ (see the module
    docstring); every node jacobian_nodes(θ) names must be in `lattice`."""
    theta = np.asarray(theta, np.float64)
    mus, jacs = [], []
    for s in range(0, len(theta), chunk):
        mu, jac = _jacobian_chunk(theta[s:s + chunk], lattice)
        mus.append(mu)
        jacs.append(jac)
    return np.concatenate(mus), np.concatenate(jacs)


def _spectra(lattice: NodeLattice, theta: np.ndarray) -> np.ndarray:
    keys, w = plan(theta)
    return interpolate(lattice.flux, lattice.rows(keys), w, dtype=np.float64)


def _jacobian_chunk(theta: np.ndarray, lattice: NodeLattice) -> tuple[np.ndarray, np.ndarray]:
    n = len(theta)
    u, has_free, free = _free_axis(theta)
    th_up, th_dn, span = _neighbours(theta)
    mu = _spectra(lattice, theta)
    n_pix = mu.shape[1]
    up = _spectra(lattice, th_up.reshape(-1, _D)).reshape(n, _D, n_pix)
    dn = _spectra(lattice, th_dn.reshape(-1, _D)).reshape(n, _D, n_pix)
    with np.errstate(invalid="ignore", divide="ignore"):
        jac = (up - dn) / (span * STEP)[:, :, None]
    jac = np.where((span > 0)[:, :, None], jac, 0.0).transpose(0, 2, 1).copy()
    rows = np.nonzero(has_free)[0]
    if len(rows):
        jac[rows, :, free[rows]] = _free_slope(theta[rows], u[rows], free[rows], lattice)
    return mu, jac


def _free_slope(theta: np.ndarray, u: np.ndarray, free: np.ndarray, lattice: NodeLattice
                ) -> np.ndarray:
    """∂μ/∂θ_free (n, P) of the renormalised Catmull–Rom interpolant: with f = Σ w_k F_k,
    g = Σ w'_k F_k / Δ and the median m = (f[p] + f[q]) / 2 over the two middle-rank
    pixels p, q (held), μ = f/2m so μ' = (g − f·m'/m)/2m with m' = (g[p] + g[q]) / 2."""
    keys, _ = plan(theta)
    r = np.arange(len(theta))
    t = u[r, free] - np.floor(u[r, free])
    nodes = lattice.flux[lattice.rows(keys)].astype(np.float64)        # (n, 4, P)
    f = np.einsum("bk,bkp->bp", catmull_rom(t), nodes)
    g = np.einsum("bk,bkp->bp", catmull_rom_slope(t), nodes) / STEP[free][:, None]
    n_pix = f.shape[1]
    mid = [n_pix // 2 - 1, n_pix // 2] if n_pix % 2 == 0 else [n_pix // 2]
    pq = np.argpartition(f, mid, axis=1)[:, mid]
    m = np.take_along_axis(f, pq, 1).mean(1, keepdims=True)
    dm = np.take_along_axis(g, pq, 1).mean(1, keepdims=True)
    return (g - f * dm / m) / (2.0 * m)


def crlb(theta: np.ndarray, error: np.ndarray, lattice: NodeLattice, *,
         noise_level: float = 1.0, params: tuple[int, ...] = (0, 1, 2, 3, 4),
         chunk: int = CHUNK_ROWS):
    """CRLB of log g (fisher.CrlbResult) for lattice-built rows θ (N, 5) with per-pixel 1σ
    `error` (N, P), same units and marginalisation as fisher.crlb."""
    import torch

    from engine.generator.fisher import CrlbResult, crlb_from_fisher, fisher_matrix
    theta = np.asarray(theta, np.float64)
    error = np.asarray(error, np.float64)
    parts = []
    for s in range(0, len(theta), chunk):
        _, jac = _jacobian_chunk(theta[s:s + chunk], lattice)
        fis = fisher_matrix(torch.from_numpy(jac), torch.from_numpy(error[s:s + chunk]),
                            noise_level)
        parts.append(crlb_from_fisher(fis, params))
    return CrlbResult(*(np.concatenate([getattr(p, k) for p in parts])
                        for k in ("crlb_log_g", "crlb_cond", "schur", "spd")))
