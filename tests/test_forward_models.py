"""What both forward models (generator v1 `me`, engine/generator/synth.py, and v2 `lte`,
engine/generator/lte/synth.py) must do alike: shapes, finiteness and the pfsspec median
normalisation on the 4096 output pixels; TiO only in cool stars; a flux-conserving
LSF + rebin operator on the physics' own fine grid; the noise model's SNR at mag 21.5.
Each physics' own physics checks are in test_generator.py (v1) and test_generator_lte.py (v2)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from _spectra import DWARF_GIANT, ew, residual
from engine.generator.physics import synth_module

# the v2 model is ~10× slower per spectrum: fewer draws for its noise check
NOISE_DRAWS = {"me": 48, "lte": 32}


@pytest.fixture(scope="module", params=["me", "lte"])
def physics(request):
    return request.param


@pytest.fixture(scope="module")
def model(physics):
    return synth_module(physics).ForwardModel()


def _grids(physics):
    from engine.generator import grids
    from engine.generator.lte import grids as lte_grids
    return lte_grids if physics == "lte" else grids


def test_forward_shapes_finite_and_median(model):
    th = torch.tensor([[3750, 1.0, -2.5, -0.25, -0.75], [6000, 5.0, 0.75, 0.5, 0.5],
                       [4800, 3.0, -0.5, 0.1, 0.0]], dtype=torch.float32)
    with torch.no_grad():
        f = model(th)
    assert f.shape == (3, 4096) and f.dtype == torch.float32
    assert torch.isfinite(f).all() and (f > 0).all()
    np.testing.assert_allclose(np.median(f.numpy(), axis=1), 0.5, rtol=1e-6)   # numpy median, as pfsspec
    assert model.wave.shape == (4096,)
    assert 7100.0 < float(model.wave[0]) < 7100.5 and 8849.5 < float(model.wave[-1]) < 8850.0


def test_na_and_k_lines_stronger_in_dwarfs(model):
    # same T_eff and abundances, dwarf vs giant (GENERATOR.md §1.1: W ∝ g^{1/3}, the
    # pressure-broadened wings of neutral lines)
    r, lam = residual(model, DWARF_GIANT)
    na = ew(r, lam, 8172, 8205)      # Na I 8185.5 + 8197.1 (vacuum)
    k1 = ew(r, lam, 7696, 7706)      # K I 7701.1
    for d, g in ((0, 1), (2, 3)):
        assert na[d] > 1.3 * na[g]
        assert k1[d] > 1.3 * k1[g]


def test_tio_present_in_cool_stars_only(model):
    th = torch.tensor([[3750, 1.5, 0, 0, 0], [6000, 1.5, 0, 0, 0], [4500, 4.5, 0, 0, 0]],
                      dtype=torch.float64)
    tau = model.molecules.to(torch.float64)(th).numpy()
    lam = model.fine_wave.numpy()
    band = (lam > 7130) & (lam < 7200)
    depth = 1 - np.exp(-tau[:, band].mean(1))
    assert 0.1 < depth[0] < 0.4        # ~20 % at 3750 K, log g 1.5, solar (Kirkpatrick+91)
    assert depth[1] < 1e-4             # absent at 6000 K
    assert depth[2] < 0.02
    model.to(torch.float32)


def test_lsf_rebin_conserves_flux(physics):
    from engine.generator.lsf import LsfRebin
    g = _grids(physics)
    op = LsfRebin(grids=g).to(torch.float64)
    flat = torch.ones(1, g.N_FINE, dtype=torch.float64)
    np.testing.assert_allclose(op(flat).numpy(), 1.0, atol=1e-12)
    lam = torch.as_tensor(g.fine_wave())
    line = 1 - 0.8 * torch.exp(-0.5 * ((lam - 8000.0) / 0.1) ** 2)[None]
    out = op(line).numpy()[0]
    ew_fine = float((1 - line).sum()) * g.FINE_STEP
    ew_out = float((1 - out).sum()) * g.PIXEL_STEP
    np.testing.assert_allclose(ew_out, ew_fine, rtol=1e-6)
    fwhm_px = (out < 1 - (1 - out.min()) / 2).sum()
    assert 3 <= fwhm_px <= 5                # FWHM ≈ 1.7 Å ≈ 4 px


def test_noise_model_median_snr_at_mag_21_5(model, physics):
    from engine.generator.noise import NoiseConfig, draw_k, error_from_flux
    from engine.generator.priors import sample_labels
    wave = _grids(physics).wave()
    n = NOISE_DRAWS[physics]
    rng = np.random.default_rng(7)
    th, _ = sample_labels(rng, n)
    with torch.no_grad():
        flux = model(torch.tensor(th, dtype=torch.float32)).numpy()
    err = error_from_flux(flux, wave, np.full(n, 21.5), draw_k(rng, n, NoiseConfig()))
    assert np.isfinite(err).all() and (err > 0).all()
    assert abs(np.median(flux / err) / 7.1 - 1) < 0.15      # research grid: 7.1 at mag 21.5
    # background-limited: one magnitude fainter ≈ 2.5× less SNR
    err2 = error_from_flux(flux, wave, np.full(n, 22.5), np.full(n, 1.42))
    err1 = error_from_flux(flux, wave, np.full(n, 21.5), np.full(n, 1.42))
    assert 2.0 < np.median(err2 / err1) < 2.6
