"""The Fisher model's fused kernel: Voigt line cores + smooth opacity → χ → optical depth
→ formal solution, as one torch.autograd.Function with an analytic forward-mode rule.

Why: the exact CRLB runs `torch.func.jacfwd` (five tangents) through the model. Carried
through the plain code, every elementwise pass over the (B, D, N_fine) opacity and
optical-depth arrays is repeated for five tangents, and those passes were most of the
CRLB's cost. Here the forward pass computes, once, F and its partial derivatives with
respect to the per-line parameters (η0, a, Δλ_D at every core sample), the smooth
opacity (coarse grid), RHOX and T; the jvp only contracts them with the small tangents
((B, D, lines) and (B, D, N_coarse)) — no (5, B, D, N_fine) tensor is ever formed.
Values are the plain model's (`profiles.bucket_opacity` + `coarse_to_fine` +
`transfer.emergent_flux`), to rounding; tests/test_lte_jacobian.py checks the rule against
`jacfwd` through the plain code. The Fisher code itself no longer runs `jacfwd` through
this rule: `ForwardModel.jacobian` (lte/jacobian.py) evaluates the same partials with an
explicit tangent axis, compilable; this rule keeps `jacfwd(model)` cheap for other users."""

from __future__ import annotations

import torch

from engine.generator.lte.transfer import depth_partials, flux_partials, optical_depth
from engine.generator.voigt import voigt_h_grads


def coarse_to_fine(c: torch.Tensor) -> torch.Tensor:
    """Linear interpolation from the coarse grid to the fine grid (fine points sit a
    quarter of a coarse step either side of each coarse point; edges replicated)."""
    cp = torch.cat([c[..., :1], c, c[..., -1:]], -1)
    even = 0.75 * c + 0.25 * cp[..., :-2]
    odd = 0.75 * c + 0.25 * cp[..., 2:]
    return torch.stack([even, odd], -1).reshape(*c.shape[:-1], -1)


class LineTransfer(torch.autograd.Function):
    """F (B, N) from line-core parameters η0, a, Δλ_D (B, D, L), the smooth opacity per
    gram on the coarse grid (B, D, N/2), RHOX and T (B, D); forward-mode AD only."""

    generate_vmap_rule = True

    @staticmethod
    def forward(eta0, a, dld, smooth, rhox, t, wave, scale, core_dl, core_idx):
        b, d, n_lines = eta0.shape
        n = wave.shape[0]
        v2 = (core_dl / dld[..., None]) ** 2                                  # (B, D, L, W)
        h, h_a, h_v2 = voigt_h_grads(a[..., None], v2)
        prof = (eta0[..., None] * h).reshape(b * d, -1)
        core = prof.new_zeros(b * d, n + 1).index_add(1, core_idx, prof)[:, :-1]
        chi = core.reshape(b, d, n) + coarse_to_fine(smooth)
        flux, g_tau, g_t = flux_partials(optical_depth(chi, rhox), t, wave, scale)
        g_chi, g_rhox = depth_partials(chi, rhox, g_tau)
        # ∂F/∂χ at every core sample (the sink column, outside the grid, gets 0)
        g_s = torch.nn.functional.pad(g_chi, (0, 1)).reshape(b * d, n + 1)[:, core_idx]
        g_s = g_s.reshape(b, d, n_lines, -1)
        # ∂F/∂η0, ∂F/∂a, ∂F/∂Δλ_D per sample, laid out (B, L, W, D) for the contraction
        p_eta = (g_s * h).permute(0, 2, 3, 1).contiguous()
        p_a = (g_s * (eta0[..., None] * h_a)).permute(0, 2, 3, 1).contiguous()
        p_dld = (g_s * ((-2.0 * eta0 / dld)[..., None] * h_v2 * v2)).permute(0, 2, 3, 1).contiguous()
        return flux, p_eta, p_a, p_dld, g_chi[..., 0::2], g_chi[..., 1::2], g_rhox, g_t

    @staticmethod
    def setup_context(ctx, inputs, output):
        ctx.mark_non_differentiable(*output[1:])
        ctx.save_for_forward(*output[1:], inputs[9])
        ctx.n = inputs[6].shape[0]

    @staticmethod
    def jvp(ctx, t_eta0, t_a, t_dld, t_smooth, t_rhox, t_t, *_):
        p_eta, p_a, p_dld, g_even, g_odd, g_rhox, g_t, core_idx = ctx.saved_tensors
        b = p_eta.shape[0]
        samples = 0.0
        for p, tan in ((p_eta, t_eta0), (p_a, t_a), (p_dld, t_dld)):
            if tan is not None:
                samples = samples + torch.einsum("blwd,bdl->blw", p, tan)
        out = p_eta.new_zeros(b, ctx.n + 1).index_add(1, core_idx, samples.reshape(b, -1))[:, :-1]
        if t_smooth is not None:
            tp = torch.cat([t_smooth[..., :1], t_smooth, t_smooth[..., -1:]], -1)
            even = (g_even * (0.75 * t_smooth + 0.25 * tp[..., :-2])).sum(1)
            odd = (g_odd * (0.75 * t_smooth + 0.25 * tp[..., 2:])).sum(1)
            out = out + torch.stack([even, odd], -1).reshape(b, -1)
        for g, tan in ((g_rhox, t_rhox), (g_t, t_t)):
            if tan is not None:
                out = out + torch.einsum("bdn,bd->bn", g, tan)
        return (out,) + (None,) * 7

    @staticmethod
    def backward(ctx, *grads):
        raise NotImplementedError("LineTransfer supports forward-mode AD (jacfwd) only")


def line_transfer(eta0, a, dld, smooth, rhox, t, wave, scale, core_dl, core_idx) -> torch.Tensor:
    """Emergent F (B, N_fine) through `LineTransfer` (the Fisher model's path)."""
    return LineTransfer.apply(eta0, a, dld, smooth, rhox, t, wave, scale, core_dl, core_idx)[0]
