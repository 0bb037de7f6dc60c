"""Label and observing-condition priors.

Labels: the research's independent near-uniform box (docs/generator.md,
Noise model: Priors). Option `snap=True` mimics pfsspec's spline sampling: every
label is snapped to its BOSZ grid node except one axis chosen at random per spectrum,
which stays continuous and is recorded in `interp_param`.

Observing conditions: as the research config (common.json, train.json)."""

from __future__ import annotations

import numpy as np

from engine.generator.synth import PARAMS

BOX = {"T_eff": (3750.0, 6000.0), "log_g": (1.0, 5.0), "M_H": (-2.5, 0.75),
       "a_M": (-0.25, 0.5), "C_M": (-0.75, 0.5)}
GRID_STEP = {"T_eff": 250.0, "log_g": 0.5, "M_H": 0.25, "a_M": 0.25, "C_M": 0.25}
OBSERVING = {"mag": (20.5, 22.5), "seeing": (0.5, 1.5), "target_zenith_angle": (0.0, 45.0),
             "target_field_angle": (0.0, 0.65), "moon_zenith_angle": (30.0, 90.0),
             "moon_target_angle": (60.0, 180.0)}


def sample_labels(rng: np.random.Generator, n: int, *, snap: bool = False
                  ) -> tuple[np.ndarray, np.ndarray]:
    """θ (n, 5) in PARAMS order and interp_param (n,) str ('' unless snapping)."""
    lo = np.array([BOX[p][0] for p in PARAMS])
    hi = np.array([BOX[p][1] for p in PARAMS])
    theta = lo + (hi - lo) * rng.random((n, len(PARAMS)))
    interp = np.full(n, "", dtype=object)
    if snap:
        step = np.array([GRID_STEP[p] for p in PARAMS])
        free = rng.integers(0, len(PARAMS), n)
        snapped = np.clip(lo + np.round((theta - lo) / step) * step, lo, hi)
        keep = np.arange(len(PARAMS))[None, :] == free[:, None]
        theta = np.where(keep, theta, snapped)
        interp = np.array([PARAMS[i] for i in free], dtype=object)
    return theta, interp


def sample_observing(rng: np.random.Generator, n: int) -> dict[str, np.ndarray]:
    """mag (HSC-i), seeing and the four angles, each U(lo, hi); moon phase 0."""
    out = {k: lo + (hi - lo) * rng.random(n) for k, (lo, hi) in OBSERVING.items()}
    out["moon_phase"] = np.zeros(n)
    return out
