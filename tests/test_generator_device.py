"""The generator on another device (`--device cuda`), checked without a GPU.

* Every tensor the forward models and the Fisher Jacobians touch follows the model: both
  run with all their buffers and θ on torch's `meta` device, where an op that mixes in a
  tensor left on the CPU (a table built with torch.as_tensor and never registered, an
  index made without `device=`) raises exactly as it would on CUDA.
* The GPU configuration of generator v2 (one block per chunk for the Voigt cores and the
  formal solution, 64-star chunks) computes the CPU configuration's spectra: forced on CPU
  tensors, it gives the same numbers.
* Device names resolve or fail with one clear SpecError (engine.devices)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from engine.devices import resolve_device
from engine.errors import SpecError
from engine.generator import fisher
from engine.generator.physics import fisher_model, synth_module

THETA = [[4800.0, 3.0, -0.5, 0.1, 0.0], [5600.0, 4.5, -1.5, 0.3, 0.25], [3900.0, 1.0, 0.25, 0.0, -0.25]]


@pytest.mark.parametrize("physics", ["me", "lte"])
def test_forward_model_runs_on_another_device(physics):
    model = synth_module(physics).ForwardModel().to("meta")
    out = model(torch.tensor(THETA, device="meta"))
    assert out.device.type == "meta" and out.shape == (3, 4096)


@pytest.mark.parametrize("physics", ["me", "lte"])
def test_fisher_jacobian_runs_on_another_device(physics):
    model = fisher_model(physics).to("meta")
    assert fisher.model_device(model).type == "meta"
    mu, jac = fisher.jacobian(np.array(THETA), model)        # θ from numpy goes to the model
    assert mu.device.type == jac.device.type == "meta" and jac.shape == (3, 4096, 5)
    fis = fisher.fisher_matrix(jac, torch.ones(3, 4096))        # the error follows J
    assert fis.device.type == "meta" and fis.shape == (3, 5, 5)


def test_lte_gpu_blocking_gives_the_cpu_spectra(monkeypatch):
    """The non-CPU branch of lte/synth.py (whole-chunk cores and transfer, GPU_SUB_BATCH
    stars per chunk) is the same arithmetic per star as the CPU's cache blocking."""
    lte = synth_module("lte")
    model = lte.ForwardModel()
    theta = torch.tensor(THETA * 4)                              # 12 stars: > SUB_BATCH
    with torch.no_grad():
        cpu = model(theta)
        monkeypatch.setattr(lte, "_on_cpu", lambda x: False)
        gpu_style = model(theta)
    np.testing.assert_allclose(gpu_style.numpy(), cpu.numpy(), rtol=2e-6, atol=0)


def test_batch_synth_on_cpu_by_name():
    synth = synth_module("me").BatchSynth(4, device="cpu")
    default = synth_module("me").BatchSynth(4)
    assert synth.device == torch.device("cpu")
    np.testing.assert_array_equal(synth(np.array(THETA)), default(np.array(THETA)))


def test_device_names():
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device(" CPU ") == torch.device("cpu")
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    assert resolve_device(None) == resolve_device("auto")
    with pytest.raises(SpecError, match="unknown device 'gpu'") as exc:
        resolve_device("gpu")
    assert "cuda:N" in exc.value.hint
    if not torch.cuda.is_available():
        for name in ("cuda", "cuda:1"):
            with pytest.raises(SpecError, match="CUDA is not available") as exc:
                resolve_device(name)
            assert exc.value.key == "device" and "--device cpu" in exc.value.hint


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU (bench/gpu_check.sh)")
@pytest.mark.parametrize("physics", ["me", "lte"])
def test_cuda_spectra_and_crlb_match_the_cpu(physics):
    """On a GPU: the same spectra (float32 rounding) and σ_CRLB (float32 Jacobian, float64
    Fisher sum) as the CPU."""
    theta = np.array(THETA)
    mod = synth_module(physics)
    cpu, gpu = mod.BatchSynth(4)(theta), mod.BatchSynth(4, device="cuda")(theta)
    np.testing.assert_allclose(gpu, cpu, rtol=0, atol=2e-5)
    err = np.full((3, 4096), 0.05)
    s_cpu = fisher.crlb(theta, err, model=fisher_model(physics)).crlb_log_g
    s_gpu = fisher.crlb(theta, err, model=fisher_model(physics, "cuda")).crlb_log_g
    np.testing.assert_allclose(np.sqrt(s_gpu), np.sqrt(s_cpu), rtol=1e-3)
