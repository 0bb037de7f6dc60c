"""Generator v2.2's hydrogen level dissolution (lte/hydrogen.py; docs/generator-v2.md,
"Paschen lines"): Hummer–Mihalas occupation probabilities w(n) against hand-computed
limits, the Paschen line strengths scaled by w(n_u), the dissolved n = 3 pseudo-continuum
continuous with the true Paschen continuum at the edge, and the gravity contrast it makes
in a warm metal-poor star."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from engine.generator.lte.atmosphere import HE_PER_H
from engine.generator.lte.hydrogen import (A0_CM, dissolved_n_eff, kappa_dissolved_n3,
                                           log_occupation_probability)
from engine.generator import grids
from engine.generator.lte.linelist import LineList
from engine.generator.lte.opacity import kappa_hydrogen
from engine.generator.lte.synth import ForwardModel

T64 = dict(dtype=torch.float64)


def _w(n, n_hi, n_he, n_e, t):
    def f(x):
        return torch.tensor(float(x), **T64)
    return float(torch.exp(log_occupation_probability(float(n), f(n_hi), f(n_he), f(n_e), f(t))))


def test_neutral_term_is_the_hard_sphere_excluded_volume():
    """No electrons (N_e tiny → w_charged = 1): w = exp(−4π/3 N_H (r_n + √3 a0)³) with
    r_n = a0 √(2.5 n⁴ + 0.5 n²) — n = 15 in 1e17 H atoms/cm³ (the Sun near τ = 1),
    computed by hand: r = 355.9 a0, (357.6 a0)³ = 6.77e-18 cm³ → w = 0.059."""
    w = _w(15, 1e17, 0.0, 1.0, 5000.0)
    assert w == pytest.approx(math.exp(-4.0 * math.pi / 3.0 * 1e17 * (357.64 * A0_CM) ** 3), rel=1e-3)
    assert w == pytest.approx(0.059, abs=0.002)
    # He counts with its own radius, H I with √3 a0: at equal density He removes less
    assert _w(15, 0.0, 1e17, 1.0, 5000.0) > w


def test_charged_term_limits():
    """Ions alone (N_H = 0): w → 1 at low N_e and → 0 at stellar-interior densities;
    at N_e = 1e14, T = 6000 K, n = 15 the Hubeny–Hummer–Lanz fit gives, by hand,
    β_c = 8.3e14·(1e14)^{−2/3}·K₁₅/15⁴ = 2.40 (K₁₅ = 0.3151), a = 0.250, x = 2.02,
    f = 0.1402 x β³ / (1 + 0.1285 x β^{3/2}) = 1.99 → w = f/(1+f) = 0.665."""
    assert _w(15, 0.0, 0.0, 1e8, 6000.0) > 0.999
    assert _w(15, 0.0, 0.0, 1e18, 6000.0) < 1e-6
    k = 16 / 3 * (15 / 16) ** 2 * (15 + 7 / 6) / (225 + 15 + 0.5)
    beta = 8.3e14 * 1e14 ** (-2 / 3) * k / 15 ** 4
    x = (1 + 0.09 * 1e14 ** (1 / 6) / math.sqrt(6000.0)) ** 3.15
    f = 0.1402 * x * beta ** 3 / (1 + 0.1285 * x * beta ** 1.5)
    assert _w(15, 0.0, 0.0, 1e14, 6000.0) == pytest.approx(f / (1 + f), rel=1e-6)
    assert f / (1 + f) == pytest.approx(0.665, abs=0.001)


def test_w_falls_with_level_and_density_and_stays_finite_in_float32():
    ws = [_w(n, 3e16, 3e15, 1e12, 5000.0) for n in range(3, 28)]
    assert all(a > b for a, b in zip(ws, ws[1:]))
    assert ws[0] > 0.999                         # n = 3 is never dissolved in a photosphere
    assert _w(14, 1e17, 1e16, 1e13, 5000.0) < _w(14, 1e16, 1e15, 1e12, 5000.0)
    def f(x):
        return torch.tensor(x, dtype=torch.float32)
    for n_e in (1e6, 1e10, 1e17):
        lw = log_occupation_probability(20.0, f(1e18), f(1e17), f(n_e), f(9000.0))
        assert torch.isfinite(lw)


def test_dissolved_pseudo_continuum_continues_the_paschen_continuum_at_the_edge():
    """Just redward of the 8206 Å edge n* → ∞, w(n*) → 0, so the pseudo-continuum equals
    the n = 3 photo-ionisation term of `kappa_hydrogen` just blueward (which drops out
    there); far redward (n* → 3) it vanishes; blueward it is zero."""
    t, n_hi, n_e = (torch.tensor([6000.0], **T64), torch.tensor([1e17], **T64),
                    torch.tensor([1e14], **T64))
    edge = 1.0 / (1.0 / 9.0) * 911.7633
    lam = torch.tensor([edge - 30.0, edge - 0.5, edge + 0.5, edge + 2000.0], **T64)
    n_star = torch.as_tensor(dissolved_n_eff(lam.numpy()), **T64)
    assert n_star[0] == 0 and n_star[2] > 100 and 3.0 < n_star[3] < 8.0
    kd = kappa_dissolved_n3(lam, n_star, t, n_hi, n_hi * HE_PER_H, n_e)[0]
    kh = kappa_hydrogen(lam, t)[0]
    assert kd[0] == 0 and kd[1] == 0
    jump = kh[1] - kh[2]                         # the n = 3 term that stops at the edge
    assert jump > 0
    assert float(kd[2]) == pytest.approx(float(jump), rel=0.02)
    assert kd[3] < 0.1 * kd[2]


def _model(dissolution: bool, hydrogen_only: bool = False) -> ForwardModel:
    lines = None
    if hydrogen_only:                     # one negligible metal line: the Paschen lines alone
        lines = LineList(np.array([7500.0]), np.array([26]), np.array([0]), np.array([0.0]),
                         np.array([-20.0]), np.array([1.0]), np.array([0.0]))
    m = ForwardModel(lines, dtype=torch.float64)
    m.paschen.dissolution = dissolution
    return m


def test_line_strengths_scale_by_the_upper_level_occupation_probability():
    th = torch.tensor([[5500.0, 4.5, -1.5, 0.4, 0.0]], **T64)
    on, off = _model(True, True), _model(False, True)
    s, _, frac, log_u, _ = on.continuum_parts(th)
    s_on = on.paschen.params(s, frac, log_u)[0]
    s_off = off.paschen.params(s, frac, log_u)[0]
    w = torch.exp(on.paschen.log_w_upper(s, frac))
    assert torch.allclose(s_on, s_off * w, rtol=1e-12)
    # upper members are dissolved more than lower ones, layer by layer
    order = torch.argsort(on.paschen.n_up)
    assert torch.all(torch.diff(w[0][:, order], dim=-1) <= 0)


def test_high_paschen_lines_carry_gravity_in_a_warm_metal_poor_star():
    """5500 K, [M/H] −1.5, hydrogen lines alone: P15's equivalent width (±4 Å) is smaller in
    the dwarf (log g 4.5) than in the giant (2.5) already without dissolution (the H⁻
    continuum grows with P_e); dissolution makes the contrast several times larger, the
    gravity signal Turbospectrum shows (P14–P17 all but dissolved at dwarf densities;
    docs/generator-v2.md, "Paschen lines"), while the giant keeps most of its line."""
    th = torch.tensor([[5500.0, 4.5, -1.5, 0.4, 0.0], [5500.0, 2.5, -1.5, 0.4, 0.0]], **T64)
    p15 = grids.air_to_vacuum(np.array([8545.38]))[0]
    ew = {}
    for diss in (False, True):
        m = _model(diss, hydrogen_only=True)
        with torch.no_grad():
            r = m.residual(th).numpy()
        fw = m.fine_wave.numpy()
        sel = np.abs(fw - p15) < 4.0
        ew[diss] = (1.0 - r[:, sel]).sum(1) * (fw[1] - fw[0])
    ratio_off, ratio_on = ew[False][0] / ew[False][1], ew[True][0] / ew[True][1]
    assert ratio_on < 0.05 * ratio_off             # measured: 0.141 → 0.0005
    assert ew[True][1] > 0.4 * ew[False][1]        # measured: 0.54
