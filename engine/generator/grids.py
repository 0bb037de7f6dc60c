"""The fixed wavelength grids (vacuum Å).

* output: the 4096 pixels of the PFS MR arm, taken from the ETC reference run (a linear
  dispersion: left edge 7100.00 Å, 0.42724609 Å/px, so centres 7100.21–8849.79 Å);
* fine: the synthesis grid, 7080–8871 Å at 0.03 Å (docs/generator.md, Speed: 0.03 Å and a
  1e-3 window threshold keep the error vs a 0.02 Å reference at ~0.2 % rms), with margins
  for the LSF. Its length is a multiple of `COARSE_FACTOR` so the first, exactly
  flux-conserving, step of the LSF+rebin operator is a reshape-mean."""

from __future__ import annotations

import numpy as np

N_PIXELS = 4096
PIXEL_EDGE0 = 7100.0
PIXEL_STEP = 0.42724609
FINE_START = 7080.0
FINE_STEP = 0.03
COARSE_FACTOR = 3
N_FINE = 59700  # 7080.00 ... 8870.97 Å


def wave_edges() -> np.ndarray:
    """The 4097 output pixel edges (vacuum Å)."""
    return PIXEL_EDGE0 + PIXEL_STEP * np.arange(N_PIXELS + 1, dtype=np.float64)


def wave() -> np.ndarray:
    """The 4096 output pixel centres (vacuum Å)."""
    e = wave_edges()
    return 0.5 * (e[1:] + e[:-1])


def fine_wave() -> np.ndarray:
    """Centres of the fine synthesis grid (vacuum Å)."""
    return FINE_START + FINE_STEP * (np.arange(N_FINE, dtype=np.float64) + 0.5)


def air_to_vacuum(lam_air: np.ndarray) -> np.ndarray:
    """Air → vacuum wavelengths (Å), the VALD/Piskunov inversion of Morton (2000)."""
    s2 = (1e4 / np.asarray(lam_air, dtype=np.float64)) ** 2
    n = (1.0 + 8.336624212083e-5 + 2.408926869968e-2 / (130.1065924522 - s2)
         + 1.599740894897e-4 / (38.92568793293 - s2))
    return lam_air * n
