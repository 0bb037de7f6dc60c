"""The exact CRLB: autograd Jacobian vs central finite differences of the same float64
forward model, the Schur complement vs an explicit numpy computation, non-SPD flagging."""

from __future__ import annotations

import numpy as np
import torch

from engine.generator import grids
from engine.generator.fisher import (CrlbResult, crlb, crlb_from_fisher, fisher_matrix,
                                     fisher_model, jacobian)
from engine.generator.noise import error_from_flux

THETA = np.array([[4500.0, 2.5, -0.5, 0.1, 0.0], [5600.0, 4.5, 0.2, 0.0, -0.3]])
STEPS = np.array([0.5, 1e-3, 1e-3, 1e-3, 1e-3])     # ΔT_eff in K; dex elsewhere


def _fd_jacobian(theta):
    m = fisher_model()
    cols = []
    with torch.no_grad():
        for p in range(5):
            d = np.zeros(5)
            d[p] = STEPS[p]
            cols.append((m(torch.tensor(theta + d)) - m(torch.tensor(theta - d))) / (2 * STEPS[p]))
    return torch.stack(cols, dim=-1)


def test_crlb_equals_central_differences():
    mu, jac = jacobian(THETA)
    fd = _fd_jacobian(THETA)
    rel = (fd - jac).norm(dim=1) / jac.norm(dim=1)
    assert float(rel.max()) < 1e-3
    err = torch.as_tensor(error_from_flux(mu.numpy(), grids.wave(), np.array([21.5, 21.5]),
                                          np.array([1.42, 1.42])))
    auto = crlb_from_fisher(fisher_matrix(jac, err))
    num = crlb_from_fisher(fisher_matrix(fd, err))
    np.testing.assert_allclose(auto.crlb_log_g, num.crlb_log_g, rtol=1e-3)
    np.testing.assert_allclose(auto.schur, num.schur, rtol=1e-3)
    assert auto.spd.all() and ((auto.schur > 0) & (auto.schur <= 1)).all()
    # the CRLB scales with noise_level²
    half = crlb_from_fisher(fisher_matrix(jac, err, noise_level=0.5))
    np.testing.assert_allclose(half.crlb_log_g, 0.25 * auto.crlb_log_g, rtol=1e-8)


def test_crlb_wrapper_chunks_consistently():
    theta = THETA[:1]
    mu, jac = jacobian(theta)
    err = error_from_flux(mu.numpy(), grids.wave(), np.array([22.0]), np.array([1.42]))
    direct = crlb_from_fisher(fisher_matrix(jac, torch.as_tensor(err)))
    wrapped = crlb(theta, err, chunk=1)
    np.testing.assert_allclose(wrapped.crlb_log_g, direct.crlb_log_g, rtol=1e-10)


def test_schur_complement_matches_numpy():
    rng = np.random.default_rng(0)
    a = rng.standard_normal((3, 40, 5))
    f = torch.as_tensor(np.einsum("bkp,bkq->bpq", a, a))
    res = crlb_from_fisher(f, (0, 1, 2))
    for i in range(3):
        fi = f[i].numpy()[:3, :3]
        g, e = 1, [0, 2]
        schur = fi[g, g] - fi[g, e] @ np.linalg.solve(fi[np.ix_(e, e)], fi[e, g])
        np.testing.assert_allclose(res.crlb_log_g[i], 1 / schur, rtol=1e-10)
        np.testing.assert_allclose(res.crlb_cond[i], 1 / fi[g, g], rtol=1e-12)


def test_non_spd_fisher_is_flagged_not_ridged():
    f = torch.zeros(2, 5, 5, dtype=torch.float64)
    f[0] = torch.eye(5)
    f[1, 0, 0] = 1.0                       # log g carries no information: singular
    res: CrlbResult = crlb_from_fisher(f)
    assert res.spd.tolist() == [True, False]
    assert res.crlb_log_g[0] == 1.0 and np.isnan(res.crlb_log_g[1])
