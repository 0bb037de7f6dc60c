"""The exact Cramér–Rao bound of log g for every spectrum (docs/generator.md, The exact CRLB).

J = ∂μ/∂θ by forward-mode autograd (`torch.func.jacfwd`) through the whole float64
forward model — atmosphere, opacities, Voigt profiles, LSF, rebin and normalisation — so
there is no finite-difference or emulator error. With Σ = diag((noise_level·error)²):
F = Jᵀ Σ⁻¹ J, and log g is marginalised over the nuisance parameters by inverting F with a
Cholesky factorisation (T_eff in kK for conditioning; Schur complement = [F⁻¹]_gg). A
matrix that is not positive definite gives NaN and is counted, never silently ridged.

The normaliser is the smooth median (synth.smooth_median), not the stored data's exact
median: the median's derivative flows through one pixel and is piecewise.
The two normalisations agree to ~1e-3 in value."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch

from engine.generator.synth import PARAMS, ForwardModel

LOGG = PARAMS.index("log_g")
SCALE = (1e-3, 1.0, 1.0, 1.0, 1.0)   # θ units used for F: T_eff in kK


@dataclass(frozen=True)
class CrlbResult:
    """Per spectrum: crlb_log_g (marginal variance, dex²), crlb_cond (1/F_gg, all other
    parameters known), schur (= crlb_cond / crlb_log_g ∈ (0, 1]), spd (bool)."""

    crlb_log_g: np.ndarray
    crlb_cond: np.ndarray
    schur: np.ndarray
    spd: np.ndarray


def model_device(model: torch.nn.Module) -> torch.device:
    """The device a forward model's buffers live on (θ is moved there)."""
    return next(model.buffers()).device


@lru_cache(maxsize=2)
def fisher_model(normalise: str = "smooth") -> ForwardModel:
    return ForwardModel(normalise=normalise, dtype=torch.float64, analytic_jvp=True)


def jacobian(theta: np.ndarray | torch.Tensor, model: ForwardModel | None = None
             ) -> tuple[torch.Tensor, torch.Tensor]:
    """(μ (B, K), J (B, K, 5)) as float64, J w.r.t. θ in PARAMS units (T_eff in K),
    computed in the model's dtype (generator v2's Fisher model is float32: see
    lte/synth.py JACOBIAN_DTYPE).

    Rows are independent, so the Jacobian of θ_b + δ ↦ μ_b w.r.t. a shared δ ∈ R⁵ is
    exactly ∂μ_b/∂θ_b: five forward-mode tangents for the whole batch."""
    model = fisher_model() if model is None else model
    th = torch.as_tensor(np.asarray(theta, dtype=np.float64), device=model_device(model))
    zero = th.new_zeros(th.shape[1])

    if getattr(model, "analytic_jvp", False) and hasattr(model, "jacobian"):
        mu, jac = model.jacobian(th)        # generator v2: explicit stages (lte/jacobian.py)
        return mu.to(torch.float64), jac.to(torch.float64)

    def f(delta):
        out = model(th + delta)
        return out, out

    jac, mu = torch.func.jacfwd(f, has_aux=True)(zero)
    return mu.to(torch.float64), jac.to(torch.float64)


def fisher_matrix(jac: torch.Tensor, error: torch.Tensor, noise_level: float = 1.0
                  ) -> torch.Tensor:
    """F = Jᵀ Σ⁻¹ J in scaled units (T_eff in kK), (B, 5, 5)."""
    jac = jac.to(torch.float64)
    js = jac * torch.as_tensor(SCALE, dtype=jac.dtype, device=jac.device).reciprocal()
    jw = js / (noise_level * error.to(jac.device, jac.dtype))[..., None]
    return jw.transpose(1, 2) @ jw


def crlb_from_fisher(fisher: torch.Tensor, params: tuple[int, ...] = (0, 1, 2, 3, 4)
                     ) -> CrlbResult:
    """Marginal CRLB of log g when only `params` (indices into PARAMS, must contain log g)
    are unknown; the others are treated as known."""
    sub = list(params)
    g = sub.index(LOGG)
    f = fisher[:, sub][:, :, sub]
    chol, info = torch.linalg.cholesky_ex(f)
    spd = info == 0
    eye = torch.eye(len(sub), dtype=f.dtype, device=f.device).expand_as(f)
    safe = torch.where(spd[:, None, None], chol, eye)
    cov = torch.cholesky_inverse(safe)
    marg = torch.where(spd, cov[:, g, g], torch.full_like(cov[:, g, g], float("nan")))
    cond = 1.0 / f[:, g, g]
    return CrlbResult(*(x.cpu().numpy() for x in (marg, cond, cond / marg, spd)))


def crlb(theta: np.ndarray, error: np.ndarray, *, noise_level: float = 1.0,
         params: tuple[int, ...] = (0, 1, 2, 3, 4), chunk: int = 16,
         model: ForwardModel | None = None) -> CrlbResult:
    """CRLB of log g for spectra θ (N, 5) with per-pixel 1σ `error` (N, 4096), chunked."""
    theta = np.asarray(theta, dtype=np.float64)
    error = np.asarray(error, dtype=np.float64)
    parts = []
    for s in range(0, len(theta), chunk):
        _, jac = jacobian(theta[s:s + chunk], model)
        fis = fisher_matrix(jac, torch.as_tensor(error[s:s + chunk]), noise_level)
        parts.append(crlb_from_fisher(fis, params))
    return CrlbResult(*(np.concatenate([getattr(p, k) for p in parts])
                        for k in ("crlb_log_g", "crlb_cond", "schur", "spd")))
