"""Generator v2's fast paths keep the physics: the telescoped formal solution against a
direct quadrature of the formal integral, the explicit three-stage Jacobian
(lte/jacobian.py) and the fused analytic-jvp kernel (LineTransfer, PaschenProfile) against
plain `jacfwd` and against central differences of the float64 model, the kernel's
expm1-free φ and its smooth-opacity stage against their float64 references, and the
float32 Fisher model's CRLB — eager and torch.compile'd — against the float64 one."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from engine.generator import grids
from engine.generator.fisher import crlb, jacobian
from engine.generator.lte import jacobian as lte_jacobian
from engine.generator.lte.atmosphere import Structure
from engine.generator.lte.synth import ForwardModel
from engine.generator.lte.transfer import emergent_flux, gauss_mu
from engine.generator.noise import error_from_flux
from engine.generator.physics import fisher_model

THETA = np.array([[4500.0, 2.5, -0.5, 0.1, 0.0], [5900.0, 4.4, -1.8, 0.4, -0.3]])
STEPS = np.array([0.5, 1e-3, 1e-3, 1e-3, 1e-3])     # ΔT_eff in K; dex elsewhere


def _direct_flux(tau: np.ndarray, s: np.ndarray) -> float:
    """2∫Iμdμ by brute force: I(μ) = S_0(1 − e^{−τ_0/μ}) + ∫ S(t) e^{−t/μ} dt/μ over the
    layers (S linear in τ between them, fine trapezoid) + e^{−τ_D/μ}(S_D + μ dS/dτ|_D)."""
    slope = (s[-1] - s[-3]) / (tau[-1] - tau[-3])
    total = 0.0
    for mu, w in zip(*gauss_mu()):
        inner = 0.0
        for d in range(len(tau) - 1):
            t = np.linspace(tau[d], tau[d + 1], 20001)
            f = np.interp(t, tau[d:d + 2], s[d:d + 2]) * np.exp(-t / mu) / mu
            inner += np.sum(0.5 * (f[1:] + f[:-1]) * np.diff(t))
        i_mu = (s[0] * -np.expm1(-tau[0] / mu) + inner
                + np.exp(-tau[-1] / mu) * (s[-1] + mu * slope))
        total += 2.0 * w * mu * i_mu
    return total


def test_formal_solution_equals_direct_quadrature():
    rng = np.random.default_rng(1)
    d = 17
    tau = np.stack([10.0 ** (np.linspace(-6, 2, d) + rng.uniform(-0.2, 0.2, d)) for _ in range(3)])
    tau.sort(axis=1)
    src = np.stack([np.linspace(1.0, 8.0, d) ** rng.uniform(1, 3) for _ in range(3)])
    src[2, :4] = src[2, :4][::-1]          # a source that falls with depth at the top
    got = emergent_flux(torch.as_tensor(tau)[..., None], torch.as_tensor(src)[..., None])[:, 0]
    want = np.array([_direct_flux(tau[i], src[i]) for i in range(3)])
    np.testing.assert_allclose(got.numpy(), want, rtol=1e-7)


def test_phi_safe_equals_float64_closed_form():
    """The compiled kernel's φ(x) = (1 − e^{−x})/x and φ'(x) in float32, without expm1
    (inductor's CPU expm1 is exp − 1, relative error 1 at x = 1e-9), against float64."""
    x = torch.logspace(-9, 2, 20001, dtype=torch.float64)
    want_phi = -torch.expm1(-x) / x
    want_dphi = (torch.exp(-x) - want_phi) / x
    small = x < 1e-4
    want_dphi[small] = -0.5 + x[small] / 3.0
    phi, dphi = lte_jacobian._phi_safe(-x.to(torch.float32))
    assert float(((phi.double() - want_phi) / want_phi).abs().max()) < 1e-6
    # φ' closed form just above x = 0.1 cancels to ~ε/x (measured 6.5e-6; the eager
    # _phi_and_slope switches at 0.01: ~6e-5 there)
    assert float(((dphi.double() - want_dphi) / want_dphi).abs().max()) < 1e-5


def _stage1(m, th):
    """ForwardModel.jacobian_inputs and its tangents (K = 5 leading), as lte/jacobian.py."""
    prim, tans = torch.func.jacfwd(lambda d: (m.jacobian_inputs(th + d),) * 2,
                                   has_aux=True)(th.new_zeros(5))[::-1]
    return prim, tuple(x.movedim(-1, 0) for x in tans)


def _rel(got_t, want_t):
    """max |Δ| of K tangents (K, ...) against jacfwd's (..., K), per tangent's max."""
    want = want_t.movedim(-1, 0)
    scale = want.abs().reshape(want.shape[0], -1).amax(1).reshape(-1, *([1] * (want.dim() - 1)))
    scale = torch.where(scale > 0, scale, torch.ones_like(scale))   # e.g. Δλ_D along [C/M]: 0
    return float(((got_t - want).abs() / scale).max())


def test_strength_tangents_equal_autodiff():
    """LineStrengths.tangents (the chain rule written out) against jacfwd through the
    model's line strengths: values identical, tangents to 1e-9."""
    m = ForwardModel(normalise="smooth", dtype=torch.float64, analytic_jvp=True)
    th = torch.as_tensor(THETA)

    def strengths(d):
        s, _, _, _, n_hi = m.continuum_parts(th + d)
        out = m.strengths(th + d, s, n_hi)
        return out, out

    want_t, want = torch.func.jacfwd(strengths, has_aux=True)(th.new_zeros(5))
    (theta, _, _, _, _, rhox, t, p_e, p_gas, n_hi), tans = _stage1(m, th)
    s = Structure(rhox, t, p_gas, p_e, None, None, None)
    got = m.strengths.tangents(theta, s, n_hi, tans[0], tans[6], tans[7], tans[8], tans[9])
    for x, y in zip(got[:3], want):
        np.testing.assert_allclose(x.numpy(), y.numpy(), rtol=1e-12)
    for x, y in zip(got[3:], want_t):
        assert _rel(x, y) < 1e-9


def test_smooth_opacity_stage_equals_model():
    """lte/jacobian.py builds the smooth opacity (continuum, FFT wings, Paschen) and its
    tangents from the small per-layer arrays: the same values as ForwardModel.opacity_parts
    and the same tangents as jacfwd through it."""
    m = ForwardModel(normalise="smooth", dtype=torch.float64, analytic_jvp=True)
    th = torch.as_tensor(THETA)
    want_t, want = torch.func.jacfwd(lambda d: (m.opacity_parts(th + d)[:4],) * 2,
                                     has_aux=True)(th.new_zeros(5))
    prim, tans = _stage1(m, th)
    l0, a, dld = want[:3]
    t_l0, t_a, t_dld = (x.movedim(-1, 0) for x in want_t[:3])
    consts = (m.cont_w, m.wing_i0, m.wing_i1, m.wing_w1, m.wing_kre, m.wing_kim,
              m.paschen.dl, m.paschen.idx, m.n_coarse)
    got, got_t = lte_jacobian._smooth_opacity(l0, a, dld, *prim[1:5], t_l0, t_a, t_dld,
                                              *tans[1:5], consts)
    np.testing.assert_allclose(got.numpy(), want[3].numpy(), rtol=1e-10, atol=1e-30)
    assert _rel(got_t, want_t[3]) < 1e-9


@pytest.fixture(scope="module")
def jacobians():
    fused = ForwardModel(normalise="smooth", dtype=torch.float64, analytic_jvp=True)
    plain = ForwardModel(normalise="smooth", dtype=torch.float64, analytic_jvp=False)
    return fused, jacobian(THETA, fused), jacobian(THETA, plain)


def test_explicit_jacobian_equals_plain_autodiff(jacobians):
    """fisher.jacobian on the analytic model takes the explicit path (lte/jacobian.py)."""
    _, (mu_f, jac_f), (mu_p, jac_p) = jacobians
    np.testing.assert_allclose(mu_f.numpy(), mu_p.numpy(), rtol=1e-10, atol=1e-12)
    scale = jac_p.abs().amax(dim=1, keepdim=True)
    assert float(((jac_f - jac_p).abs() / scale).max()) < 1e-6


def test_fused_jvp_rules_equal_plain_autodiff(jacobians):
    """jacfwd through the analytic model itself (LineTransfer, PaschenProfile jvp rules)."""
    fused, _, (_, jac_p) = jacobians
    jac, _ = torch.func.jacfwd(lambda d: (fused(torch.as_tensor(THETA) + d),) * 2,
                               has_aux=True)(torch.zeros(5, dtype=torch.float64))
    scale = jac_p.abs().amax(dim=1, keepdim=True)
    assert float(((jac - jac_p).abs() / scale).max()) < 1e-6


def test_fused_jacobian_equals_central_differences(jacobians):
    model, (_, jac), _ = jacobians
    cols = []
    with torch.no_grad():
        for p in range(5):
            d = np.zeros(5)
            d[p] = STEPS[p]
            cols.append((model(torch.tensor(THETA + d)) - model(torch.tensor(THETA - d)))
                        / (2 * STEPS[p]))
    fd = torch.stack(cols, dim=-1)
    rel = (fd - jac).norm(dim=1) / jac.norm(dim=1)
    assert float(rel.max()) < 1e-3


def test_float32_fisher_model_crlb_within_tolerance(jacobians):
    model64 = jacobians[0]
    model32 = fisher_model("lte")
    assert model32.dtype == torch.float32 and fisher_model("me").dtype == torch.float64
    rng = np.random.default_rng(3)
    theta = np.concatenate([THETA, [[3800.0, 1.2, 0.5, -0.2, 0.4], [5200.0, 3.5, -2.4, 0.45, 0.0]]])
    with torch.no_grad():
        flux = model64(torch.as_tensor(theta)).numpy()
    err = error_from_flux(flux, grids.wave(), rng.uniform(20.5, 22.5, len(theta)),
                          np.full(len(theta), 1.42))
    r32, r64 = crlb(theta, err, model=model32), crlb(theta, err, model=model64)
    assert r32.spd.all() and r64.spd.all()
    rel = np.abs(np.sqrt(r32.crlb_log_g / r64.crlb_log_g) - 1.0)
    assert float(rel.max()) < 1e-3                # measured 6e-5 on 20 random stars
    np.testing.assert_allclose(r32.schur, r64.schur, atol=1e-3)
    # the torch.compile'd kernel (what a long build's CRLB pass uses; 4 stars padded to 16)
    model32.compile_jacobian = True
    try:
        rc = crlb(theta, err, model=model32)
    finally:
        model32.compile_jacobian = False
    if lte_jacobian._COMPILED.get(torch.float32) is lte_jacobian.kernel:
        pytest.skip("torch.compile is not available here (fell back to eager)")
    rel = np.abs(np.sqrt(rc.crlb_log_g / r64.crlb_log_g) - 1.0)
    assert rc.spd.all() and float(rel.max()) < 1e-3
    np.testing.assert_allclose(rc.schur, r64.schur, atol=1e-3)
