"""The v2 Fisher model's Jacobian J = ∂μ/∂θ in three explicit stages, the costly middle one
without autograd (docs/generator-v2.md, Speed).

Why: under `torch.func.jacfwd` every op runs with five batched tangents; in the fused line
kernel (fused.LineTransfer) the vmapped jvp contractions copied (5, B, D, N) arrays, and
the many elementwise passes over (B, D, N_fine) arrays could not be fused. Here

1. θ → (ℓ0, a, Δλ_D, smooth opacity, RHOX, T) and their five tangents by `jacfwd`
   (atmosphere, continuum, line strengths, FFT wings, Paschen: ops on (B, D, lines) and
   (B, D, N_coarse) arrays);
2. Voigt cores + smooth opacity → χ → τ → formal solution, its partial derivatives
   (transfer.flux_partials, depth_partials) and their contraction with the stage-1
   tangents as plain tensor code with an explicit tangent axis: `kernel` below, run by
   torch.compile (inductor; one fused loop nest instead of ~150 passes over memory) when it
   is available and eager otherwise — same numbers to float32 rounding;
3. molecules × LSF × rebin × smooth-median normaliser by `jvp` (cheap: (B, N_fine)).

Values equal `ForwardModel(analytic_jvp=True)` and its `jacfwd` (tests/test_lte_jacobian.py:
< 1e-6 relative in float64, central differences < 1e-3, the float32 CRLB against the
float64 one < 1e-3). Inductor's CPU `expm1` is exp(x) − 1 (it cancels for small x), so the
kernel evaluates φ(x) = (1 − e^{−x})/x by its series below x = 0.1 (`_phi_safe`)."""

from __future__ import annotations

import os
import warnings

import torch

from engine.generator.lte.fused import coarse_to_fine
from engine.generator.lte.transfer import depth_partials, flux_partials, optical_depth
from engine.generator.synth import pfsspec_normalise
from engine.generator.voigt import voigt_h_grads

PHI_SERIES_X = 0.1        # below: φ and φ' by their Taylor series (truncation < 2e-8)
COMPILE_ENV = "LOGG_CRLB_COMPILE"   # auto | on | off (default auto)


def _phi_safe(xn: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(φ, φ') at xn = −x < 0 without expm1: series (to xn⁵) where x < PHI_SERIES_X, the
    closed forms (e^{xn} − 1)/xn and (φ − e^{xn})/xn elsewhere (float32 error there
    ≲ ε/x ≈ 1e-6)."""
    small = xn > -PHI_SERIES_X
    z = torch.where(small, xn.new_tensor(-1.0), xn)          # keeps the closed form finite
    ez = torch.exp(z)
    phi_c = (ez - 1.0) / z
    dphi_c = (phi_c - ez) / z
    phi_s = 1.0 + xn * (1 / 2 + xn * (1 / 6 + xn * (1 / 24 + xn * (1 / 120 + xn / 720))))
    dphi_s = -(1 / 2 + xn * (1 / 3 + xn * (1 / 8 + xn * (1 / 30 + xn * (1 / 144 + xn / 840)))))
    return torch.where(small, phi_s, phi_c), torch.where(small, dphi_s, dphi_c)


def kernel(eta0, a, dld, smooth, rhox, t, t_eta0, t_a, t_dld, t_smooth, t_rhox, t_t,
           wave, scale, core_dl, core_idx):
    """(F (B, N), dF (K, B, N)): the emergent flux of fused.LineTransfer and its derivative
    along K tangents of the inputs (t_x: (K,) + x.shape). Plain tensor code (compilable)."""
    b, d, n_lines = eta0.shape
    n = wave.shape[0]
    k = t_eta0.shape[0]
    v2 = (core_dl / dld[..., None]) ** 2                                      # (B, D, L, W)
    h, h_a, h_v2 = voigt_h_grads(a[..., None], v2)
    prof = (eta0[..., None] * h).reshape(b * d, -1)
    core = prof.new_zeros(b * d, n + 1).index_add(1, core_idx, prof)[:, :-1]
    chi = core.reshape(b, d, n) + coarse_to_fine(smooth)
    flux, g_tau, g_t = flux_partials(optical_depth(chi, rhox), t, wave, scale, phi=_phi_safe)
    g_chi, g_rhox = depth_partials(chi, rhox, g_tau)
    # line cores: dF at each core sample = Σ_d ∂F/∂χ · (∂χ/∂η0 t_η0 + ∂χ/∂a t_a + ∂χ/∂Δλ_D t_Δλ_D),
    # one batched matmul over (star, line): (W, 3D) @ (3D, K)
    g_s = torch.nn.functional.pad(g_chi, (0, 1)).reshape(b * d, n + 1)[:, core_idx]
    g_s = g_s.reshape(b, d, n_lines, -1)
    part = torch.stack([g_s * h, g_s * (eta0[..., None] * h_a),
                        g_s * ((-2.0 * eta0 / dld)[..., None] * h_v2 * v2)], -1)   # (B, D, L, W, 3)
    part = part.permute(0, 2, 3, 1, 4).reshape(b * n_lines, -1, 3 * d)
    tan = torch.stack([t_eta0, t_a, t_dld], -1).permute(1, 3, 2, 4, 0).reshape(b * n_lines, 3 * d, k)
    samples = torch.bmm(part, tan).reshape(b, -1, k).permute(2, 0, 1).reshape(k * b, -1)
    out = samples.new_zeros(k * b, n + 1).index_add(1, core_idx, samples)[:, :-1].reshape(k, b, n)
    # RHOX and T: per star (K, D) @ (D, N)
    out = out + torch.bmm(t_rhox.permute(1, 0, 2), g_rhox).permute(1, 0, 2)
    out = out + torch.bmm(t_t.permute(1, 0, 2), g_t).permute(1, 0, 2)
    # smooth opacity (coarse grid, upsampled linearly: fine 2i = ¾c_i + ¼c_{i−1}, 2i+1 =
    # ¾c_i + ¼c_{i+1}, edges replicated): four products summed over layers
    ge, go = g_chi[..., 0::2], g_chi[..., 1::2]
    e_c = (ge * t_smooth).sum(2)
    o_c = (go * t_smooth).sum(2)
    e_l = (ge[..., 1:] * t_smooth[..., :-1]).sum(2)                 # Σ_d ge_i c_{i−1}, i ≥ 1
    o_r = (go[..., :-1] * t_smooth[..., 1:]).sum(2)                 # Σ_d go_i c_{i+1}, i < last
    even = 0.75 * e_c + 0.25 * torch.cat([e_c[..., :1], e_l], -1)
    odd = 0.75 * o_c + 0.25 * torch.cat([o_r, o_c[..., -1:]], -1)
    out = out + torch.stack([even, odd], -1).reshape(k, b, n)
    return flux, out


_COMPILED: dict = {}


def _mode() -> str:
    mode = os.environ.get(COMPILE_ENV, "auto").strip().lower()
    return mode if mode in ("auto", "on", "off") else "auto"


def _kernel_fn(dtype: torch.dtype):
    """The compiled kernel for `dtype` when torch.compile works here (once per process;
    `LOGG_CRLB_COMPILE=off` or a failed compile → eager, the same numbers to rounding)."""
    if _mode() == "off":
        return kernel
    if dtype not in _COMPILED:
        warnings.filterwarnings("ignore", message=".*does not support code generation.*")
        _COMPILED[dtype] = torch.compile(kernel, dynamic=False)
    return _COMPILED[dtype]


def _call_kernel(args, dtype):
    fn = _kernel_fn(dtype)
    if fn is kernel:
        return kernel(*args)
    try:
        return fn(*args)
    except Exception:  # noqa: BLE001 — compiler missing or failing → eager, same numbers
        if _mode() == "on":
            raise
        _COMPILED[dtype] = kernel
        return kernel(*args)


def explicit_jacobian(model, theta: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(μ (B, 4096), J (B, 4096, 5)) of `model` (a v2 ForwardModel) at θ (B, 5), in the
    model's dtype; J w.r.t. θ in PARAMS units."""
    th = theta.to(model.dtype)
    zero = th.new_zeros(th.shape[1])

    def parts(delta):
        l0, a, dld, smooth, s = model.opacity_parts(th + delta)
        out = (l0, a, dld, smooth, s.rhox, s.t)
        return out, out

    tans, prim = torch.func.jacfwd(parts, has_aux=True)(zero)
    tans = [x.movedim(-1, 0) for x in tans]                   # (5,) + shape
    flux, dflux = _call_kernel((*prim, *tans, model.fine_wave, model.planck_scale,
                                model.core_dl, model.core_idx), model.dtype)

    def rest(f, delta):
        f = f * torch.exp(-model.molecules(th + delta))
        return pfsspec_normalise(model.lsf(f), model.normalise)

    eye = torch.eye(th.shape[1], dtype=th.dtype)
    mu = rest(flux, zero)
    jac = torch.func.vmap(lambda df, v: torch.func.jvp(rest, (flux, zero), (df, v))[1])(dflux, eye)
    return mu, jac.permute(1, 2, 0)
