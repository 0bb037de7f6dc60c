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

from engine.generator.grids import (FINE_START, N_PIXELS, PIXEL_EDGE0, PIXEL_STEP,  # noqa: F401
                                    air_to_vacuum, wave, wave_edges)

FINE_STEP = 0.06
COARSE_FACTOR = 2
N_FINE = 29850  # 7080.00 ... 8870.97 Å


def fine_wave() -> np.ndarray:
    """Centres of v2's fine synthesis grid (vacuum Å); the output pixels, their edges and
    the air → vacuum conversion are v1's (engine.generator.grids)."""
    return FINE_START + FINE_STEP * (np.arange(N_FINE, dtype=np.float64) + 0.5)
