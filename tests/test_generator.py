"""Generator v1's forward model: physics sanity (value assertions), the Voigt approximation
against scipy, air→vacuum, priors. What v1 and v2 share (shapes, the median, TiO, LSF +
rebin, the noise model) is in test_forward_models.py."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from engine.generator import grids
from engine.generator.synth import ForwardModel
from _spectra import DWARF_GIANT, ew, residual


@pytest.fixture(scope="module")
def model():
    return ForwardModel()


def test_mg_8807_stronger_in_dwarfs(model):
    # one layer: Mg I 8807 follows the dwarfs' pressure-broadened wings at both T_eff (the
    # Na I and K I contrasts of both physics are in test_forward_models.py)
    r, lam = residual(model, DWARF_GIANT)
    mg = ew(r, lam, 8803, 8815)      # Mg I 8809.2 (vacuum)
    assert mg[0] > 1.05 * mg[1] and mg[2] > 1.05 * mg[3]


def test_calcium_triplet_present_and_solar_like(model):
    r, lam = residual(model, [[5777, 4.44, 0, 0, 0]])
    ca8542 = ew(r, lam, 8524, 8564)[0]
    ca8498 = ew(r, lam, 8490, 8510)[0]
    assert 3.0 < ca8542 < 6.0          # Sun ≈ 3.7 Å (blends included in the window)
    assert 1.0 < ca8498 < 2.5          # Sun ≈ 1.4 Å
    # and visible after LSF: the 8544.4 Å core is far below its neighbourhood
    with torch.no_grad():
        f = model(torch.tensor([[5777, 4.44, 0, 0, 0]], dtype=torch.float32))[0].numpy()
    w = model.wave.numpy()
    core = f[np.argmin(abs(w - 8544.44))]
    cont = np.percentile(f[(w > 8520) & (w < 8570)], 95)
    assert core < 0.6 * cont


def test_voigt_matches_faddeeva():
    from scipy.special import wofz

    from engine.generator.voigt import voigt_h, voigt_h_grads
    v = np.linspace(0, 50, 5001)
    for a in (1e-3, 1e-2, 0.1, 0.3):
        exact = wofz(v + 1j * a).real
        approx = voigt_h(torch.tensor(a, dtype=torch.float64), torch.tensor(v)).numpy()
        assert np.max(np.abs(approx - exact) / exact) < 0.09   # fitted: 7.5–8.2 %
        assert abs(approx[-1] / exact[-1] - 1) < 0.01          # exact damping wings
        # analytic gradients equal autograd
        at = torch.tensor(a, dtype=torch.float64, requires_grad=True)
        v2 = torch.tensor(v ** 2, requires_grad=True)
        h, h_a, h_v2 = voigt_h_grads(at, v2)
        ga, gv = torch.autograd.grad(h.sum(), (at, v2))
        np.testing.assert_allclose(h_a.sum().item(), ga.item(), rtol=1e-10)
        np.testing.assert_allclose(h_v2.detach().numpy(), gv.numpy(), rtol=1e-9, atol=1e-14)


def test_air_to_vacuum_known_lines():
    np.testing.assert_allclose(grids.air_to_vacuum(np.array([8542.091, 8183.255, 8806.756])),
                               [8544.44, 8185.50, 8809.17], atol=0.01)


def test_bosz_snapping_keeps_one_free_axis():
    from engine.generator.priors import BOX, GRID_STEP, sample_labels
    from engine.generator.synth import PARAMS
    th, interp = sample_labels(np.random.default_rng(3), 500, snap=True)
    for j, p in enumerate(PARAMS):
        lo = BOX[p][0]
        on_grid = np.isclose((th[:, j] - lo) / GRID_STEP[p], np.round((th[:, j] - lo) / GRID_STEP[p]))
        assert on_grid[interp != p].all()
        assert not on_grid[interp == p].all()
        assert (th[:, j] >= BOX[p][0]).all() and (th[:, j] <= BOX[p][1]).all()
    th2, interp2 = sample_labels(np.random.default_rng(3), 10)
    assert set(interp2) == {""}
