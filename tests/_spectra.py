"""Helpers for the forward-model tests: line residuals and equivalent widths on a model's
own fine grid (either physics: both models have `residual(θ)`)."""

from __future__ import annotations

import numpy as np
import torch

# same T_eff and abundances, dwarf then giant: (4500 K: log g 4.6, 2.5), (3800 K: 4.7, 1.2)
DWARF_GIANT = [[4500, 4.6, 0, 0, 0], [4500, 2.5, 0, 0, 0], [3800, 4.7, 0, 0, 0],
               [3800, 1.2, 0, 0, 0]]


def residual(model, theta) -> tuple[np.ndarray, np.ndarray]:
    """Line residual F/F_c on the model's fine grid (before molecules and LSF), float64,
    and the grid (vacuum Å)."""
    th = torch.tensor(theta, dtype=torch.float32)
    with torch.no_grad():
        r = model.residual(th).double()
    return r.numpy(), model.fine_wave.double().numpy()


def ew(r: np.ndarray, lam: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """Equivalent width [Å] of 1 − r between lo and hi, per spectrum."""
    s = (lam > lo) & (lam < hi)
    return (1 - r[:, s]).sum(1) * float(lam[1] - lam[0])
