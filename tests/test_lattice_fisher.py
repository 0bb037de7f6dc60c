"""The lattice Jacobian/CRLB (engine/generator/lte/lattice_fisher.py) against oracles, on
synthetic node lattices (cheap stand-in spectra; the physics is not what is checked here):

* a lattice whose spectra are a known quadratic of θ with a fixed median, where grid
  central differences and the Catmull–Rom slope are exact → J and the CRLB equal the
  analytic ones to rounding;
* on-node rows equal np.gradient of the node array (central inside, one-sided at edges);
* the free-axis slope equals a fine finite difference of lattice.interpolate (with its
  renormalisation to median 0.5)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from engine.generator.fisher import crlb_from_fisher, fisher_matrix
from engine.generator.lte import lattice_fisher
from engine.generator.lte.lattice import interpolate, node_index, plan
from engine.generator.lte.node_store import LO, N_NODES, STEP, NodeLattice, flat_index
from engine.generator.priors import sample_labels

PIX = 4096
HALF = (PIX - 2) // 2          # pixels below / above the two pixels that hold the median


class Quadratic:
    """μ_p(θ) = a_p + b_p·u + uᵀC_p u (u = node coordinates) on the pixels below and above
    the median, and exactly 0.5 on two pixels that stay the two middle ranks: the median is
    0.5 at every θ, so lattice.interpolate's renormalisation is the identity. Coefficients
    are multiples of 2⁻¹⁶ and nodes have integer u, so node spectra are exact in float32."""

    def __init__(self, seed: int = 0) -> None:
        rng = np.random.default_rng(seed)
        n = PIX - 2
        self.a = np.where(np.arange(n) < HALF, 0.2, 0.8)
        self.b = rng.integers(-40, 41, (n, 5)) / 2.0 ** 16
        c = rng.integers(-4, 5, (n, 5, 5)) / 2.0 ** 16
        self.c = (c + c.transpose(0, 2, 1)) / 2

    def __call__(self, theta: np.ndarray) -> np.ndarray:
        u = (np.asarray(theta, np.float64) - LO) / STEP
        var = self.a + u @ self.b.T + np.einsum("ni,pij,nj->np", u, self.c, u)
        assert (np.abs(var - self.a) < 0.09).all()          # stays on its side of 0.5
        return np.concatenate([np.full((len(u), 2), 0.5), var], 1).astype(np.float32)

    def jacobian(self, theta: np.ndarray) -> np.ndarray:
        """Analytic ∂μ/∂θ (n, P, 5) in PARAMS units."""
        u = (np.asarray(theta, np.float64) - LO) / STEP
        du = self.b[None] + 2 * np.einsum("pij,nj->npi", self.c, u)
        out = np.concatenate([np.zeros((len(u), 2, 5)), du], 1)
        return out / STEP


def smooth(theta: np.ndarray) -> np.ndarray:
    """A smooth, non-polynomial stand-in spectrum normalised to median 0.5."""
    x = np.linspace(0, 1, PIX)[None, :]
    t = (np.asarray(theta, np.float64) - LO) / (STEP * np.array(N_NODES))
    f = 0.5 + 0.2 * np.sin(6 * x + 3 * t[:, :1]) * (0.3 + t[:, 1:2]) + 0.05 * np.cos(
        11 * x * (1 + t[:, 2:3])) + 0.03 * t[:, 3:4] * x - 0.02 * t[:, 4:5] * x * x
    return (f * (0.5 / np.median(f, 1, keepdims=True))).astype(np.float32)


def lattice_for(theta: np.ndarray, synth) -> NodeLattice:
    lat = NodeLattice(None)
    lat.ensure(lattice_fisher.jacobian_nodes(theta), synth)
    return lat


def interior_rows(n: int, seed: int = 3) -> np.ndarray:
    """Snapped rows whose stencils stay inside the box (no clipping anywhere): snapped
    labels on nodes 1 … N−2, the free one between nodes 1 and N−2."""
    rng = np.random.default_rng(seed)
    hi = np.array(N_NODES) - 2
    u = rng.integers(1, hi + 1, (n, 5)).astype(np.float64)
    free = rng.integers(0, 5, n)
    r = np.arange(n)
    u[r, free] = 1 + (hi[free] - 1) * rng.random(n)
    return LO + STEP * u


def test_quadratic_lattice_gives_the_analytic_jacobian_and_crlb():
    q = Quadratic()
    theta = interior_rows(24)
    assert (~node_index(theta)[1]).any(1).all()               # every row off-node
    lat = lattice_for(theta, q)
    mu, jac = lattice_fisher.jacobian(theta, lat, chunk=7)
    np.testing.assert_allclose(mu, q(theta), atol=1e-12)
    ref = q.jacobian(theta)
    scale = np.abs(ref).max()
    np.testing.assert_allclose(jac, ref, atol=1e-9 * scale, rtol=0)
    err = np.full((len(theta), PIX), 0.02)
    got = lattice_fisher.crlb(theta, err, lat, chunk=5)
    want = crlb_from_fisher(fisher_matrix(torch.from_numpy(ref), torch.from_numpy(err)))
    np.testing.assert_allclose(got.crlb_log_g, want.crlb_log_g, rtol=1e-7)
    np.testing.assert_allclose(got.schur, want.schur, rtol=1e-7)
    assert got.spd.all()


def test_on_node_rows_are_np_gradient_of_the_node_array_edges_one_sided():
    # a small sub-box: every node within it, plus rows on its interior and on box edges
    sub = [slice(0, 3), slice(0, 3), slice(11, 14), slice(0, 4), slice(0, 3)]
    idx = np.stack(np.meshgrid(*[np.arange(s.start, s.stop) for s in sub], indexing="ij"), -1)
    theta_all = LO + STEP * idx.reshape(-1, 5)
    lat = NodeLattice(None)
    lat.ensure(flat_index(idx.reshape(-1, 5)), smooth)
    cube = lat.flux[lat.rows(flat_index(idx))].astype(np.float64)        # (3,3,3,4,3,P)
    want = np.stack([np.gradient(cube, STEP[a], axis=a) for a in range(5)], -1)
    # rows whose neighbours are inside the sub-box, or whose missing side is a box edge:
    # T_eff, log g, C_M nodes 0–1 (0 = low edge), [M/H] nodes 12–13 (13 = high edge)
    loc = idx[:2, :2, 1:, :, :2].reshape(-1, 5) - idx[0, 0, 0, 0, 0]
    glob = idx[:2, :2, 1:, :, :2].reshape(-1, 5)
    rows = LO + STEP * glob
    lat.ensure(lattice_fisher.jacobian_nodes(rows), smooth)
    _, jac = lattice_fisher.jacobian(rows, lat)
    ref = want[tuple(loc.T)]
    np.testing.assert_allclose(jac, ref, rtol=0, atol=1e-6 * np.abs(ref).max())
    edge = (glob == 0).any(1) | (glob[:, 2] == N_NODES[2] - 1) | (glob[:, 3] == N_NODES[3] - 1)
    assert edge.any() and (~edge).any()
    assert len(theta_all) == 3 * 3 * 3 * 4 * 3


def test_free_axis_slope_is_the_derivative_of_the_renormalised_interpolant():
    theta, interp = sample_labels(np.random.default_rng(5), 40, snap=True)
    lat = lattice_for(theta, smooth)
    _, jac = lattice_fisher.jacobian(theta, lat)
    u, on = node_index(theta)
    worst = 0.0
    for r in np.nonzero((~on).any(1))[0][:12]:
        a = int(np.argmax(~on[r]))
        h = 1e-5 * STEP[a]
        pts = np.repeat(theta[r:r + 1], 2, 0)
        pts[0, a] += h
        pts[1, a] -= h
        keys, w = plan(pts)
        f = interpolate(lat.flux, lat.rows(keys), w, dtype=np.float64)
        fd = (f[0] - f[1]) / (2 * h)
        tol = 1e-6 * np.abs(fd).max()
        np.testing.assert_allclose(jac[r, :, a], fd, rtol=0, atol=tol)
        # the renormalisation term matters: the bare spline slope is off by far more
        t = u[r, a] - np.floor(u[r, a])
        bare = lattice_fisher.catmull_rom_slope(np.array([t]))[0] @ lat.flux[
            lat.rows(plan(theta[r:r + 1])[0][0])].astype(np.float64) / STEP[a]
        worst = max(worst, np.abs(bare - fd).max() / tol)
    assert worst > 100


def test_two_free_axes_are_refused():
    theta = LO[None] + STEP * np.array([[1.5, 1.5, 1, 1, 1]])
    with pytest.raises(ValueError, match="at most one off-node"):
        lattice_fisher.jacobian_nodes(theta)
