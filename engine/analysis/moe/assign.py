"""MoE bin assignment by the TRUE label (Teff×[M/H]) or the true L2 SNR, with the
out-of-range policy made explicit.

Edges and the edge convention are engine.eval.bins' (one convention for the whole engine):
Teff [3750,4500) [4500,5250) [5250,6000], [M/H] [−2,−1) [−1,0) [0,0.5]; bin = 3·t + m;
L2-SNR X (−∞,2], L (2,4], M (4,7], H (7,∞).

Out of range (docs/analyses.md, `moe oracle`): `clamp` (default, the research's best)
assigns a row to the nearest bin by clipping each label into the covered box before the
lookup; `fallback` leaves it uncovered (−1) so callers route it to the global model."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from engine.errors import SpecError
from engine.eval import bins as B

OUT_OF_RANGE = ("clamp", "fallback")


@dataclass(frozen=True)
class MoeBins:
    """One MoE partition: `name` (teff-mh | snr), bin labels, and how to assign rows."""

    name: str
    labels: tuple[str, ...]

    @property
    def k(self) -> int:
        return len(self.labels)

    def assign(self, meta, *, out_of_range: str = "clamp") -> tuple[np.ndarray, np.ndarray]:
        """(bin index per row, in_range mask). `meta` maps T_eff, M_H (teff-mh) or snr_l2
        (snr) to arrays. Clamped rows get the nearest bin; fallback rows get −1."""
        if out_of_range not in OUT_OF_RANGE:
            raise SpecError(f"unknown out-of-range policy {out_of_range!r}",
                            key="out_of_range", hint="use clamp or fallback")
        if self.name == "teff-mh":
            teff = np.asarray(meta["T_eff"], dtype=np.float64)
            mh = np.asarray(meta["M_H"], dtype=np.float64)
            raw = B.assign_teff_mh(teff, mh)
            if out_of_range == "clamp":
                t = np.clip(teff, B.TEFF_EDGES[0], B.TEFF_EDGES[-1])
                m = np.clip(mh, B.MH_EDGES[0], B.MH_EDGES[-1])
                return B.assign_teff_mh(t, m), raw >= 0
            return raw, raw >= 0
        snr = np.asarray(meta["snr_l2"], dtype=np.float64)
        raw = B.SNR_L2.assign(snr)  # covers (−∞, ∞): only NaN rows are out of range
        return raw, raw >= 0


TEFF_MH = MoeBins("teff-mh", B.TEFF_MH_LABELS)
SNR_L2 = MoeBins("snr", B.SNR_L2.labels)
SCHEMES = {"teff-mh": TEFF_MH, "snr": SNR_L2}


def get_bins(name: str) -> MoeBins:
    if name not in SCHEMES:
        raise SpecError(f"unknown MoE bins {name!r}", key="bins", hint="use teff-mh or snr")
    return SCHEMES[name]


def coverage(in_range: np.ndarray) -> float:
    """Fraction of rows inside the bins' box (NaN for no rows)."""
    return float(np.mean(in_range)) if len(in_range) else float("nan")
