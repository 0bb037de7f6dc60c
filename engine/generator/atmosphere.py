"""The representative line-forming layer (docs/generator.md): MARCS-anchored power laws
for the layer temperature T_L and the gas and electron pressures at log τ₅₀₀₀ = −1.

Why one layer: it keeps the model closed-form and smooth (so autograd gives the exact
Jacobian) while carrying the physics that makes log g measurable: P_g ∝ g^0.61 sets the
van der Waals wings of neutral lines and P_e ∝ g^0.41 sets the H⁻ continuum."""

from __future__ import annotations

import torch


def layer(theta: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """θ (B, ≥3) = (T_eff, log g, [M/H], ...) → (T_L, log P_g, log P_e), each (B,).

    Pressures in dyn cm⁻²."""
    teff, logg, mh = theta[:, 0], theta[:, 1], theta[:, 2]
    dg = logg - 4.44
    dt = (teff - 5777.0) / 1000.0
    log_pg = 4.657 + 0.609 * dg - 0.203 * dt - 0.042 * dg * dt - mh / 3.0
    log_pe = 0.617 + 0.408 * dg + 0.425 * dt - 0.099 * dg * dt + mh / 3.0
    t_layer = teff * (0.891 + 0.002 * dg - 0.022 * dt - 0.012 * dg * dt)
    return t_layer, log_pg, log_pe
