"""The BOSZ-like (Kurucz SYNTHE) Paschen option, lte/hydrogen_synthe.py (docs/generator-v2.md,
"SYNTHE's Paschen lines"): the Inglis–Teller merge ramp against hand-computed wavelengths,
the HPROF4-like profile's area (the Kurucz/Peterson excess Turbospectrum's HLINOP showed:
1.74–1.95 at dwarf densities, 1.03–1.21 at giant ones), E1, the neighbour cut, and that the
default model is still generator 2.2's."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from engine.generator.lte.hydrogen import Paschen
from engine.generator.lte.hydrogen_synthe import (exp1, hprof4, merge_ramp, neighbour_mask,
                                                  paschen_wave, stark_profile)

T64 = dict(dtype=torch.float64)


def test_paschen_wavelengths_are_the_rydberg_series():
    """λ(3 → 12) = 1e8/(12186.462 − 109677.576/144) = 8752.88 Å vacuum (8750.47 air, the
    line list's P12)."""
    assert paschen_wave(12) == pytest.approx(8752.879, abs=0.01)
    assert paschen_wave(1000) == pytest.approx(1e8 / 12186.462, rel=1e-5)


def test_merge_ramp_is_zero_blueward_of_the_inglis_teller_line_and_one_500_per_cm_redward():
    """N_e = 1e13: n_merge = 1600/1e13^{2/15} − 1.5 = 28.07; λ_con = λ(3 → 28.08) and
    λ_tail = 1e8/(ν_con − 500): 0 at and below λ_con, ½ half way, 1 from λ_tail on."""
    ne = 1e13
    n_merge = 1600.0 / ne ** (2.0 / 15.0) - 1.5
    assert n_merge == pytest.approx(28.07, abs=0.01)
    nu = 12186.462 - 109677.576 / n_merge ** 2
    w_con, w_tail = 1e8 / nu, 1e8 / (nu - 500.0)
    lam = torch.tensor([w_con - 5.0, w_con, 0.5 * (w_con + w_tail), w_tail, w_tail + 50.0], **T64)
    r = merge_ramp(lam, torch.tensor([[ne]], **T64)).ravel().numpy()
    assert r == pytest.approx([0.0, 0.0, 0.5, 1.0, 1.0], abs=1e-9)
    # denser layers merge the series further from the limit: P15 is suppressed more
    p15 = torch.tensor([paschen_wave(15)], **T64)
    ramp = merge_ramp(p15, torch.tensor([[1e11, 1e13, 1e15]], **T64)).ravel()
    assert ramp[0] > ramp[1] > ramp[2] == 0.0


def test_exp1_matches_the_series_and_asymptote():
    """E1 against its convergent series −γ − ln x + Σ (−1)^{k+1} x^k/(k·k!) (exact to 1e-12
    for x ≤ 4), 5e-5 relative."""
    xs = np.array([1e-6, 1e-3, 0.1, 0.5, 0.99, 1.0, 2.0, 4.0])
    ref = [-0.5772156649015329 - math.log(x) + sum((-1) ** (k + 1) * x ** k / (k * math.factorial(k))
                                                    for k in range(1, 60)) for x in xs]
    got = exp1(torch.tensor(xs, **T64)).numpy()
    assert got == pytest.approx(ref, rel=5e-5)


def _area(ne: float, t: float, m: int, total: bool) -> float:
    dl = torch.linspace(-200.0, 200.0, 200001, **T64)[None, :]
    k = 5.5e-5 * (3 * m) ** 4 / (m * m - 9) / (1 + 0.13 / (m - 3))
    lam = torch.tensor([paschen_wave(m)], **T64)
    args = (torch.tensor([[t]], **T64), torch.tensor([[ne]], **T64))
    if total:
        dd = lam / 2.99792458e5 * math.sqrt(2 * 1.380649e-16 * t / 1.6735575e-24 * 1e-10 + 4.0)
        p = hprof4(dl, *args, dd.reshape(1, 1, 1), lam, torch.tensor([3.0], **T64),
                   torch.tensor([float(m)], **T64), torch.tensor([k], **T64))
    else:
        p = stark_profile(dl, *args, lam, torch.tensor([3.0], **T64),
                          torch.tensor([float(m)], **T64), torch.tensor([k], **T64))
    return float(p.sum() * (dl[0, 1] - dl[0, 0]))


def test_hprof4_profile_carries_the_kurucz_peterson_excess():
    """Ions (unit area) × (1 + quasi-static electrons) + electron impact: ∫ over ±200 Å is
    1.6–2.0 at N_e 1e13–1e14 (Turbospectrum's HLINOP, the same formulas with Griem's
    tabulated ion profile: 1.74–1.95 at N_e ≥ 1.8e12), and close to 1 at a giant's N_e =
    4.7e10 where the Doppler core dominates (HLINOP: 1.03–1.21)."""
    for ne, t in ((1e13, 5500.0), (1e14, 6000.0)):
        for m in (12, 15, 17):
            assert 1.6 < _area(ne, t, m, total=True) < 2.0
    assert 1.0 < _area(4.7e10, 4800.0, 15, total=True) < 1.2


def test_far_stark_wing_is_ions_plus_electrons():
    """Far out (β ≫ 1, y1 ≫ 1) FNS → 1: the wing → 2 × 1.5 β^{−5/2}/(K F0) (Griem's ion +
    electron asymptote, which generator 2.2's profile also has) plus the impact term."""
    ne, t, m = 1e13, 5500.0, 15
    k = 5.5e-5 * (3 * m) ** 4 / (m * m - 9) / (1 + 0.13 / (m - 3))
    kf = k * 1.25e-9 * ne ** (2 / 3)
    dl = torch.tensor([[40.0]], **T64)
    p = float(stark_profile(dl, torch.tensor([[t]], **T64), torch.tensor([[ne]], **T64),
                            torch.tensor([paschen_wave(m)], **T64), torch.tensor([3.0], **T64),
                            torch.tensor([15.0], **T64), torch.tensor([k], **T64)))
    beta = 40.0 / kf
    ratio = p / (1.5 * beta ** -2.5 / kf)       # in units of the ion asymptote
    assert 1.9 < ratio < 2.5                    # ions × (1 + FNS → 1) + a small impact term


def test_neighbour_mask_stops_wings_at_the_adjacent_lines():
    lam, n_up = np.array([paschen_wave(15)]), np.array([15.0])
    dl = np.array([[paschen_wave(16) - lam[0] - 0.1, paschen_wave(16) - lam[0] + 0.1, 0.0,
                    paschen_wave(14) - lam[0] - 0.1, paschen_wave(14) - lam[0] + 0.1]])
    assert neighbour_mask(lam, n_up, dl).tolist() == [[False, True, True, True, False]]


def test_default_paschen_is_generator_22_and_bad_mode_is_refused():
    wave = 8300.0 + 0.12 * np.arange(5000)
    p = Paschen(wave)
    assert p.mode == "hm" and p.dissolution
    s = Paschen(wave, mode="synthe")
    assert s.mode == "synthe" and not s.dissolution
    with pytest.raises(ValueError, match="hydrogen mode"):
        Paschen(wave, mode="kurucz")


@pytest.mark.slow
def test_synthe_variant_keeps_solar_high_paschen_lines_that_hm_dissolves():
    """Without occupation probabilities the Sun's P14–P17 stay (bench/hydrogen_synthe_variant
    .py: P15 EW 0.075 Å against 2.2's 0.0026 and Turbospectrum's 0.0044)."""
    from bench.hydrogen_synthe_variant import hydrogen_ews
    th = np.array([[5777.0, 4.44, 0.0, 0.0]])
    hm, syn = hydrogen_ews(th, "hm")[0], hydrogen_ews(th, "synthe")[0]
    assert syn[3] > 10 * hm[3]
    assert syn[3] == pytest.approx(0.075, rel=0.05)
