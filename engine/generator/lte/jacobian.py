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
   torch.compile (inductor: a few fused loop nests instead of ~150 passes over memory; two
   graphs, split on purpose before the smooth-opacity contraction) when it is available
   and eager otherwise — same numbers to float32 rounding. Layouts are chosen for the
   compiler: line-core arrays are (B, lines, samples, layers) so that every contraction
   over layers reads contiguous memory;
3. molecules × LSF × rebin × smooth-median normaliser by `jvp` (cheap: (B, N_fine)).

Values equal `ForwardModel(analytic_jvp=True)` and its `jacfwd` (tests/test_lte_jacobian.py:
< 1e-6 relative in float64, central differences < 1e-3, the float32 CRLB against the
float64 one < 1e-3). Inductor's CPU `expm1` is exp(x) − 1 (it cancels for small x), so the
kernel evaluates φ(x) = (1 − e^{−x})/x by its series below x = 0.1 (`_phi_safe`)."""

from __future__ import annotations

import math
import warnings

import torch

from engine.generator.lte.atmosphere import Structure
from engine.generator.lte.fused import coarse_to_fine
from engine.generator.lte.hydrogen import paschen_partials
from engine.generator.lte.transfer import depth_partials, flux_partials, optical_depth
from engine.generator.synth import pfsspec_normalise
from engine.generator.voigt import voigt_h_grads

PHI_SERIES_X = 0.1        # below: φ and φ' by their Taylor series (truncation < 2e-8)


def _phi_safe(xn: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(φ, φ') at xn = −x < 0 without expm1: series (to xn⁵) where x < PHI_SERIES_X, the
    closed forms (e^{xn} − 1)/xn and (φ − e^{xn})/xn elsewhere (float32 error there
    ≲ ε/x ≈ 1e-6)."""
    small = xn > -PHI_SERIES_X
    z = torch.where(small, -1.0, xn)                          # keeps the closed form finite
    ez = torch.exp(z)
    phi_c = (ez - 1.0) / z
    dphi_c = (phi_c - ez) / z
    phi_s = 1.0 + xn * (1 / 2 + xn * (1 / 6 + xn * (1 / 24 + xn * (1 / 120 + xn / 720))))
    dphi_s = -(1 / 2 + xn * (1 / 3 + xn * (1 / 8 + xn * (1 / 30 + xn * (1 / 144 + xn / 840)))))
    return torch.where(small, phi_s, phi_c), torch.where(small, dphi_s, dphi_c)


def _splat(x: torch.Tensor, idx: torch.Tensor, n: int) -> torch.Tensor:
    """Σ of the samples x (..., S) into n bins at idx (S,) (idx = n: dropped)."""
    lead = x.shape[:-1]
    flat = x.reshape(-1, x.shape[-1])
    return flat.new_zeros(flat.shape[0], n + 1).index_add(1, idx, flat)[:, :-1].reshape(*lead, n)


def _smooth_opacity(l0, a, dld, kc, p_s, p_eta, p_hf, t_l0, t_a, t_dld, t_kc, t_ps, t_peta,
                    t_phf, consts):
    """(smooth opacity per gram on the coarse grid (B, D, N_c), its K tangents): the
    continuum interpolated from its 9.6 Å grid, the FFT Lorentzian wings and the Paschen
    lines, as ForwardModel.opacity_parts builds them (values to rounding)."""
    cont_w, wing_i0, wing_i1, wing_w1, wing_kre, wing_kim, pas_dl, pas_idx, n_c = consts
    k = t_l0.shape[0]
    # continuum: linear interpolation (ForwardModel._cont_to_coarse), value and tangents
    both = torch.cat([kc[None], t_kc], 0)
    y = both[..., :-1, None] * (1.0 - cont_w) + both[..., 1:, None] * cont_w
    smooth = y.reshape(*both.shape[:-1], -1)[..., :n_c]
    # Lorentzian far wings (ForwardModel._wing_opacity): amplitude and its tangents
    amp = l0 * a * dld * dld / math.sqrt(math.pi)
    t_amp = (t_l0 * (a * dld * dld) + t_a * (l0 * dld * dld)
             + t_dld * (2.0 * l0 * a * dld)) / math.sqrt(math.pi)
    amps = torch.cat([amp[None], t_amp], 0)
    n_fft = 2 * (wing_kre.shape[0] - 1)
    comb = amps.new_zeros(*amps.shape[:-1], n_fft)
    comb = comb.index_add(-1, wing_i0, amps * (1.0 - wing_w1))
    comb = comb.index_add(-1, wing_i1, amps * wing_w1)
    kernel_f = torch.complex(wing_kre, wing_kim)
    conv = torch.fft.irfft(torch.fft.rfft(comb, dim=-1) * kernel_f, n=n_fft, dim=-1)
    smooth = smooth + conv[..., :n_c]
    # Paschen (hydrogen.paschen_opacity and its analytic derivatives)
    shape, d_eta, d_hf = paschen_partials(p_s, p_eta, p_hf, pas_dl)
    prof = torch.cat([(p_s[..., None] * shape)[None],
                      t_ps[..., None] * shape + t_peta[..., None] * d_eta + t_phf[..., None] * d_hf], 0)
    smooth = smooth + _splat(prof.reshape(*prof.shape[:3], -1), pas_idx, n_c)
    return smooth[0], smooth[1:k + 1]


def kernel(prim, tans, consts):
    """(F (B, N), dF (K, B, N)): the emergent flux of the Fisher model (fused.LineTransfer
    over ForwardModel.opacity_parts) and its derivative along K tangents. `prim` =
    ForwardModel.jacobian_inputs; `tans` the same with a leading K axis; `consts` = (fine λ,
    Planck scale, core offsets, core indices, then _smooth_opacity's). Plain tensor code
    (compilable)."""
    theta, kc, p_s, p_eta, p_hf, rhox, t, p_e, p_gas, n_hi = prim
    t_theta, t_kc, t_ps, t_peta, t_phf, t_rhox, t_t, t_pe, t_pgas, t_nhi = tans
    wave, scale, core_dl, core_idx, strengths = consts[:5]
    s = Structure(rhox, t, p_gas, p_e, None, None, None)
    eta0, a, dld, t_eta0, t_a, t_dld = strengths.tangents(theta, s, n_hi, t_theta, t_t, t_pe,
                                                          t_pgas, t_nhi)
    b, d, n_lines = eta0.shape
    n = wave.shape[0]
    k = t_eta0.shape[0]
    smooth, t_smooth = _smooth_opacity(eta0, a, dld, kc, p_s, p_eta, p_hf, t_eta0, t_a, t_dld,
                                       t_kc, t_ps, t_peta, t_phf, (*consts[5:], n // 2))
    # line cores laid out (B, L, W, D), layers innermost: the contraction over layers below
    # is then one bmm on contiguous (W, 3D) blocks (with layers outside, inductor copied a
    # (B, D, L, W, 3) array element by element into that layout: the CRLB's costliest loop)
    eta_t, a_t, dld_t = (x.transpose(1, 2) for x in (eta0, a, dld))            # (B, L, D)
    v2 = (core_dl[None, :, :, None] / dld_t[:, :, None, :]) ** 2               # (B, L, W, D)
    h, h_a, h_v2 = voigt_h_grads(a_t[:, :, None, :], v2)
    prof = (eta_t[:, :, None, :] * h).reshape(b, -1, d)                         # (B, L·W, D)
    core = prof.new_zeros(b, n + 1, d).index_add(1, core_idx, prof)[:, :-1]     # (B, N, D)
    chi = core.transpose(1, 2) + coarse_to_fine(smooth)
    flux, g_tau, g_t = flux_partials(optical_depth(chi, rhox), t, wave, scale, phi=_phi_safe)
    g_chi, g_rhox = depth_partials(chi, rhox, g_tau)
    # line cores: dF at each core sample = Σ_d ∂F/∂χ · (∂χ/∂η0 t_η0 + ∂χ/∂a t_a + ∂χ/∂Δλ_D t_Δλ_D),
    # one batched matmul over (star, line): (W, 3D) @ (3D, K)
    g_s = torch.nn.functional.pad(g_chi, (0, 1)).transpose(1, 2)[:, core_idx]  # (B, L·W, D)
    g_s = g_s.reshape(b, n_lines, -1, d)
    part = torch.stack([g_s * h, g_s * (eta_t[:, :, None, :] * h_a),
                        g_s * ((-2.0 * eta_t / dld_t)[:, :, None, :] * h_v2 * v2)], -2)  # (B, L, W, 3, D)
    part = part.reshape(b * n_lines, -1, 3 * d)
    tan = torch.stack([t_eta0, t_a, t_dld], 2).permute(1, 4, 2, 3, 0).reshape(b * n_lines, 3 * d, k)
    samples = torch.bmm(part, tan).reshape(b, -1, k).permute(2, 0, 1).reshape(k * b, -1)
    out = samples.new_zeros(k * b, n + 1).index_add(1, core_idx, samples)[:, :-1].reshape(k, b, n)
    # RHOX and T: per star (K, D) @ (D, N)
    out = out + torch.bmm(t_rhox.permute(1, 0, 2), g_rhox).permute(1, 0, 2)
    out = out + torch.bmm(t_t.permute(1, 0, 2), g_t).permute(1, 0, 2)
    # smooth opacity (coarse grid, upsampled linearly: fine 2i = ¾c_i + ¼c_{i−1}, 2i+1 =
    # ¾c_i + ¼c_{i+1}, edges replicated): four products summed over layers. The even/odd
    # fine samples as contiguous arrays, materialised before a graph break: fused into the
    # contraction, inductor re-derived ∂F/∂χ per tangent and read it with stride 2 (scalar
    # gathers; that loop nest was a third of the CRLB's time)
    ge, go = g_chi[..., 0::2].contiguous(), g_chi[..., 1::2].contiguous()
    torch._dynamo.graph_break()
    e_c = (ge * t_smooth).sum(2)
    o_c = (go * t_smooth).sum(2)
    e_l = (ge[..., 1:] * t_smooth[..., :-1]).sum(2)                 # Σ_d ge_i c_{i−1}, i ≥ 1
    o_r = (go[..., :-1] * t_smooth[..., 1:]).sum(2)                 # Σ_d go_i c_{i+1}, i < last
    even = 0.75 * e_c + 0.25 * torch.cat([e_c[..., :1], e_l], -1)
    odd = 0.75 * o_c + 0.25 * torch.cat([o_r, o_c[..., -1:]], -1)
    out = out + torch.stack([even, odd], -1).reshape(k, b, n)
    return flux, out


_COMPILED: dict = {}


def _call_kernel(args, dtype: torch.dtype, compiled: bool):
    """`kernel(*args)`, through torch.compile when `compiled` (compiled once per process and
    dtype and input shapes: callers pad to a fixed chunk). A compiler that is missing or
    fails falls back to eager for the rest of the process: the same numbers, slower."""
    if not compiled or _COMPILED.get(dtype) is kernel:
        return kernel(*args)
    if dtype not in _COMPILED:
        warnings.filterwarnings("ignore", message=".*does not support code generation.*")
        _COMPILED[dtype] = torch.compile(kernel, dynamic=False)
    try:
        return _COMPILED[dtype](*args)
    except Exception:  # noqa: BLE001 — any compiler failure → eager, same numbers
        _COMPILED[dtype] = kernel
        return kernel(*args)


def explicit_jacobian(model, theta: torch.Tensor, compiled: bool = False
                      ) -> tuple[torch.Tensor, torch.Tensor]:
    """(μ (B, 4096), J (B, 4096, 5)) of `model` (a v2 ForwardModel) at θ (B, 5), in the
    model's dtype; J w.r.t. θ in PARAMS units; `compiled`: stage 2 through torch.compile."""
    th = theta.to(model.dtype)
    zero = th.new_zeros(th.shape[1])

    def parts(delta):
        out = model.jacobian_inputs(th + delta)
        return out, out

    tans, prim = torch.func.jacfwd(parts, has_aux=True)(zero)
    tans = tuple(x.movedim(-1, 0) for x in tans)              # (5,) + shape
    consts = (model.fine_wave, model.planck_scale, model.core_dl, model.core_idx,
              model.strengths, model.cont_w,
              model.wing_i0, model.wing_i1, model.wing_w1, model.wing_kre, model.wing_kim,
              model.paschen.dl, model.paschen.idx)
    flux, dflux = _call_kernel((prim, tans, consts), model.dtype, compiled)

    def rest(f, delta):
        f = f * torch.exp(-model.molecules(th + delta))
        return pfsspec_normalise(model.lsf(f), model.normalise)

    eye = torch.eye(th.shape[1], dtype=th.dtype, device=th.device)
    mu = rest(flux, zero)
    jac = torch.func.vmap(lambda df, v: torch.func.jvp(rest, (flux, zero), (df, v))[1])(dflux, eye)
    return mu, jac.permute(1, 2, 0)
