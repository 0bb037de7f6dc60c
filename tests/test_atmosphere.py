"""Depth structure from the atmosnet network (engine/generator/atmosphere.py): the shipped
weights reproduce the package's own network, and the structures agree with real model
atmospheres shipped in synspec 1.0.3 (ATLAS9 Kurucz and MARCS), which we did not fit."""

from __future__ import annotations

import numpy as np
import torch

from engine.generator.lte.atmosphere import Atmosphere, log_tau_ross

# log10 outputs of the ORIGINAL atmosnet 1.0.1 pickle (float64 weights, numpy forward:
# scaled labels → two leaky-ReLU(0.01) layers of 300 → 80 depths), columns RHOX, T, P,
# XNE, ABROSS at depth rows 7, 40, 70. Computed once from atmosnet_c3k_300neurons_cool.pkl.
EXPECTED_RAW = {
    (5777, 4.437, 0, 0): [[-2.639623, 3.58427, 1.790646, 10.000331, -3.171518],
                          [-0.327451, 3.679856, 4.106738, 12.21772, -1.280751],
                          [0.860629, 3.992661, 5.293711, 15.750864, 1.86131]],
    (4286, 1.66, -0.52, 0.4): [[-1.206584, 3.421596, 0.450937, 7.616001, -4.723952],
                               [1.249543, 3.554124, 2.907529, 10.532377, -2.814153],
                               [2.393149, 3.922563, 4.053311, 14.505777, 0.771918]],
    (3750, 5.0, -2.5, 0.5): [[-1.921957, 3.420756, 3.105959, 8.150127, -3.93324],
                             [0.8884, 3.522831, 5.879993, 10.983007, -2.432406],
                             [2.659438, 3.680642, 7.65986, 13.610364, -0.473277]],
    (6000, 1.0, 0.75, -0.2): [[-2.37991, 3.557059, -1.347883, 7.604709, -3.591127],
                              [0.8593, 3.695014, 1.863801, 10.820428, -2.490226],
                              [1.786951, 4.200201, 2.66141, 13.89829, 0.403109]],
}

# Reference models, interpolated at log τ_Ross = −4 … +1 (τ_Ross = ∫ ABROSS dRHOX for the
# Kurucz deck; the MARCS files tabulate lgTauR):
# ksun.mod (ATLAS9, 5777/4.437/0): T [K], log P_gas, log N_e
KSUN = {-4: (4247.7, 2.9531, 11.1072), -3: (4481.4, 3.4991, 11.6333),
        -2: (4730.6, 4.0404, 12.1546), -1: (5087.9, 4.5853, 12.7033),
        0: (6214.2, 5.0611, 13.6574), 1: (8566.3, 5.2184, 15.1960)}
# msun.mod (MARCS 2008, 5777/4.44/0): T, log P_gas, log P_e
MSUN = {-4: (4280.8, 2.982, -1.118), -3: (4504.9, 3.529, -0.571), -2: (4729.9, 4.070, -0.035),
        -1: (5088.6, 4.606, 0.538), 0: (6235.2, 5.074, 1.603), 1: (8620.2, 5.221, 3.300)}
# Arcturus APOGEE DR15 MARCS model 4286/1.66/−0.52 (spherical; compared with [α/M] = 0.25)
ARCTURUS = {-4: (3026.4, 1.859, -3.264), -3: (3287.6, 2.397, -2.522), -2: (3513.0, 2.889, -1.913),
            -1: (3828.4, 3.370, -1.268), 0: (4727.1, 3.810, -0.471), 1: (7142.3, 4.045, 1.788)}


def _full(theta):
    atm = Atmosphere(rows=range(80), columns=(0, 1, 2, 3, 4)).double()
    with torch.no_grad():
        raw = atm.raw(torch.tensor([theta], dtype=torch.float64))[0].numpy()
    val = 10.0 ** raw
    rhox, kap = val[0], val[4]
    tau = np.concatenate([[rhox[0] * kap[0]],
                          rhox[0] * kap[0] + np.cumsum(0.5 * (kap[1:] + kap[:-1]) * np.diff(rhox))])
    return np.log10(tau), val


def test_network_reproduces_the_package_weights():
    atm = Atmosphere(rows=range(80), columns=(0, 1, 2, 3, 4)).double()
    for theta, exp in EXPECTED_RAW.items():
        with torch.no_grad():
            raw = atm.raw(torch.tensor([theta], dtype=torch.float64))[0].numpy()   # (5, 80)
        np.testing.assert_allclose(raw[:, [7, 40, 70]].T, np.array(exp), atol=2e-4)


def test_rosseland_depth_lands_on_the_atlas_grid_and_is_hydrostatic():
    for theta in EXPECTED_RAW:
        lt, val = _full(theta)
        # ≤ 0.02 dex for the Sun and Arcturus; the ABROSS network drifts at the box corners
        # (0.14 dex metal-poor M dwarf, 0.32 dex at log τ 1.5 in the metal-rich 6000 K
        # giant). ABROSS only serves this check: the synthesis integrates its own opacity.
        np.testing.assert_allclose(lt[5:], log_tau_ross()[5:], atol=0.35)
        # P_gas = g·RHOX − P_rad − P_turb: ≈ 1 for dwarfs, down to ~0.6 deep in a 6000 K
        # log g 1 giant (radiation pressure); decoding with exp instead of 10** fails this
        ratio = val[2] / (10.0 ** theta[1] * val[0])
        assert np.all((ratio[5:] > 0.55) & (ratio[5:] < 1.15))
    lt, val = _full((5777.0, 4.437, 0.0, 0.0))
    np.testing.assert_allclose(lt[5:], log_tau_ross()[5:], atol=0.025)


def _at(lt, val, x):
    t = np.interp(x, lt, val[1])
    lp = np.interp(x, lt, np.log10(val[2]))
    lne = np.interp(x, lt, np.log10(val[3]))
    lpe = np.interp(x, lt, np.log10(val[3] * 1.380649e-16 * val[1]))
    return t, lp, lne, lpe


def test_agrees_with_kurucz_solar_model():
    lt, val = _full((5777.0, 4.437, 0.0, 0.0))
    for x, (t_ref, lp_ref, lne_ref) in KSUN.items():
        t, lp, lne, _ = _at(lt, val, x)
        assert abs(t / t_ref - 1) < 0.012, (x, t, t_ref)
        assert abs(lp - lp_ref) < 0.03 and abs(lne - lne_ref) < 0.03


def test_agrees_with_marcs_sun_and_arcturus():
    for theta, ref, t_tol, pe_tol in (((5777.0, 4.44, 0.0, 0.0), MSUN, 0.012, 0.03),
                                      ((4286.0, 1.66, -0.52, 0.25), ARCTURUS, 0.035, 0.15)):
        lt, val = _full(theta)
        for x, (t_ref, lp_ref, lpe_ref) in ref.items():
            t, lp, _, lpe = _at(lt, val, x)
            assert abs(t / t_ref - 1) < t_tol, (theta, x, t, t_ref)
            assert abs(lp - lp_ref) < 0.04, (theta, x, lp, lp_ref)
            assert abs(lpe - lpe_ref) < pe_tol, (theta, x, lpe, lpe_ref)


def test_structure_gravity_and_metallicity_trends():
    atm = Atmosphere()
    th = torch.tensor([[5000.0, 4.5, 0.0, 0.0, 0.0], [5000.0, 1.5, 0.0, 0.0, 0.0],
                       [5000.0, 4.5, -2.0, 0.4, 0.0]])
    with torch.no_grad():
        s = atm(th)
    mid = len(atm.rows) // 2
    assert float(s.p_gas[0, mid] / s.p_gas[1, mid]) > 30.0          # dwarf ≫ giant
    assert float(s.p_gas[2, mid] / s.p_gas[0, mid]) > 1.5           # metal-poor: less opacity
    assert float(s.p_e[2, mid] / s.p_e[0, mid]) < 1.0               # fewer free electrons
    assert (s.t[:, 1:] > s.t[:, :-1]).all()                          # T rises inward
    assert torch.isfinite(s.rho).all() and (s.rho > 0).all() and (s.n_h > 0).all()


def test_rhox_stays_monotone_where_the_network_steps_back():
    # regression: at this θ (an [α/M] extrapolation) the raw network's deepest RHOX rows go
    # 123 → 120 → 152 → 120 g cm⁻², which made τ non-monotonic and the spectrum NaN
    from engine.generator.lte.synth import ForwardModel

    th = torch.tensor([[4387.75, 2.0723, -0.0031, -0.2449, 0.3070]], dtype=torch.float64)
    atm = Atmosphere().double()
    with torch.no_grad():
        raw = atm.raw(th)[0, 0].numpy()
        s = atm(th)
    assert (np.diff(raw) < 0).any()                          # the glitch is real
    assert (torch.diff(s.rhox, dim=1) > 0).all()
    good = torch.tensor([[5777.0, 4.44, 0.0, 0.0, 0.0]], dtype=torch.float64)
    with torch.no_grad():
        np.testing.assert_allclose(atm(good).rhox.numpy(), 10 ** atm.raw(good)[0, 0].numpy()[None],
                                   rtol=1e-9)
        assert torch.isfinite(ForwardModel()(th.float())).all()
