"""The fixed wavelength grids (vacuum Å).

* output: the 4096 pixels of the PFS MR arm, taken from the ETC reference run (a linear
  dispersion: left edge 7100.00 Å, 0.42724609 Å/px, so centres 7100.21–8849.79 Å);
* fine: the synthesis grid, 7080–8871 Å at 0.06 Å, with margins for the LSF. The emergent
  flux is point-sampled there (opacity sampling) and then integrated by the LSF; for the
  narrowest lines (Gaussian σ ≥ 0.043 Å: Fe at 3750 K with ξ = 2 km/s) a 0.06 Å step
  integrates each line to < 0.3 %, and the spectra after LSF + rebin agree with a 0.03 Å
  synthesis to ~1e-3 rms (tests/test_generator.py). Its length is a multiple of
  `COARSE_FACTOR` so the first, exactly flux-conserving, step of the LSF+rebin operator is
  a reshape-mean (0.12 Å coarse grid, also the grid of the smooth opacity terms)."""

from __future__ import annotations

import numpy as np

N_PIXELS = 4096
PIXEL_EDGE0 = 7100.0
PIXEL_STEP = 0.42724609
FINE_START = 7080.0
FINE_STEP = 0.06
COARSE_FACTOR = 2
N_FINE = 29850  # 7080.00 ... 8870.97 Å


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
