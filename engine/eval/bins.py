"""The fixed bin schemes every model is scored on, and the ONE edge convention.

Edge convention (documented in docs/sql.md, tested at the exact edges):
  * interval schemes `snr`, `mag`, `logg` and both axes of `teff_mh` are left-closed,
    right-open [lo, hi), except the LAST bin of each axis, which is closed [lo, hi];
  * `snr_l2` follows the research's SNR-MoE report as written: X (−∞, 2], L (2, 4],
    M (4, 7], H (7, ∞) — left-open, right-closed;
  * a row outside every bin of a scheme is "uncovered" (index −1): it counts in the
    overall metrics but in no bin. For `teff_mh` the covered rows form the `covered` subset.

Why fixed edges rather than quantiles: bins must mean the same thing across runs, test sets
and reports (docs/dev-contracts.md, research pitfall 5;
docs/sql.md, Bin schemes)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

TEFF_EDGES = (3750.0, 4500.0, 5250.0, 6000.0)
MH_EDGES = (-2.0, -1.0, 0.0, 0.5)
TEFF_NAMES = ("Cool", "Mid", "Hot")
MH_NAMES = ("Metal-poor", "Solar", "Metal-rich")
TEFF_MH_LABELS = tuple(f"{t} {m}" for t in TEFF_NAMES for m in MH_NAMES)  # bin = 3·t + m


@dataclass(frozen=True)
class IntervalScheme:
    """Contiguous bins on one meta column. `right_closed=False`: [lo, hi) with the last bin
    closed; `right_closed=True`: (lo, hi] with the first bin open below (−∞ allowed)."""

    name: str
    column: str
    edges: tuple[float, ...]
    labels: tuple[str, ...]
    right_closed: bool = False

    def bounds(self) -> list[tuple[float, float]]:
        return list(zip(self.edges[:-1], self.edges[1:]))

    def assign(self, values: np.ndarray) -> np.ndarray:
        """Bin index per value, −1 where the value is in no bin (or NaN)."""
        return assign_intervals(values, self.edges, right_closed=self.right_closed)


def assign_intervals(values: np.ndarray, edges, *, right_closed: bool = False) -> np.ndarray:
    """Index of the interval holding each value under the module's edge convention."""
    v = np.asarray(values, dtype=np.float64)
    e = np.asarray(edges, dtype=np.float64)
    nb = len(e) - 1
    if right_closed:  # (lo, hi]
        idx = np.searchsorted(e, v, side="left") - 1
        inside = (v > e[0]) & (v <= e[-1])
    else:  # [lo, hi), last [lo, hi]
        idx = np.searchsorted(e, v, side="right") - 1
        idx = np.where(v == e[-1], nb - 1, idx)
        inside = (v >= e[0]) & (v <= e[-1])
    return np.where(inside & np.isfinite(v), idx, -1).astype(np.int64)


SNR = IntervalScheme(
    "snr", "snr", (2.5, 3.5, 4.5, 5.5, 6.5, 8.5, 12.5, 18.0, 28.0),
    ("2.5-3.5", "3.5-4.5", "4.5-5.5", "5.5-6.5", "6.5-8.5", "8.5-12.5", "12.5-18", "18-28"))
SNR_L2 = IntervalScheme("snr_l2", "snr_l2", (-np.inf, 2.0, 4.0, 7.0, np.inf),
                        ("X", "L", "M", "H"), right_closed=True)
MAG = IntervalScheme("mag", "mag", (20.5, 21.0, 21.5, 22.0, 22.5),
                     ("20.5-21", "21-21.5", "21.5-22", "22-22.5"))
LOGG = IntervalScheme("logg", "log_g", (1.0, 2.0, 3.0, 4.0, 5.0),
                      ("1-2", "2-3", "3-4", "4-5"))
INTERVAL_SCHEMES = (SNR, SNR_L2, MAG, LOGG)
SCHEME_NAMES = tuple(s.name for s in INTERVAL_SCHEMES) + ("teff_mh",)


def assign_teff_mh(teff: np.ndarray, mh: np.ndarray) -> np.ndarray:
    """The 9-bin Teff×[M/H] index 3·t + m (docs/sql.md, Bin schemes), −1 = uncovered."""
    t = assign_intervals(teff, TEFF_EDGES)
    m = assign_intervals(mh, MH_EDGES)
    return np.where((t >= 0) & (m >= 0), 3 * t + m, -1).astype(np.int64)


def teff_mh_bounds(b: int) -> tuple[tuple[float, float], tuple[float, float]]:
    """((Teff lo, hi), ([M/H] lo, hi)) of bin b."""
    t, m = divmod(b, 3)
    return (TEFF_EDGES[t], TEFF_EDGES[t + 1]), (MH_EDGES[m], MH_EDGES[m + 1])
