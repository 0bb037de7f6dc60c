"""Mondrian (per SNR bin) normalised split-conformal recalibration, through crepes.

Why crepes (0.9, Boström et al.): it is small (numpy/pandas/scipy/sklearn only), works on
predictions and residuals rather than wrapping the estimator (our models stream from HDF5
and are not refit), and has Mondrian categories and difficulty estimators built in — the
two things this needs. MAPIE 1.x wants to own the estimator's fit/predict; puncc pulls in
its own wrappers per framework.

How a star's interval is made, for every model:

1. a raw scale σ_raw per star (the *difficulty*): the model's own σ when it has one (the
   ViT with `loss=beta_nll`), else crepes' `DifficultyEstimator`: the mean |residual| of the
   k nearest validation stars in (ŷ, log SNR) — leave-one-out on the validation split itself;
2. nonconformity |y − ŷ| / σ_raw on the validation split (the frozen noisy realisation the
   test split is scored with, never seen by the weights), split by SNR bin (engine.eval.bins
   `snr` edges; stars outside go to the nearest end bin; a bin with fewer than
   `min_per_bin` validation stars is merged into its neighbour towards the middle);
3. per bin, the conformal quantile q_α of those scores (crepes ConformalRegressor), so the
   interval ŷ ± q_α σ_raw holds at level α in every SNR bin (marginally over the bin's stars).

The reported σ is the 68.27 % half-width q_0.6827 σ_raw (a Gaussian's σ when the residuals
are Gaussian). Caveat: ridge α, LightGBM early stopping and the ViT's best epoch are chosen
on the same validation split, a mild optimism the test-split coverage then measures."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from engine.eval.bins import SNR
from engine.eval.uncertainty import LEVELS

K_NEIGHBOURS = 25
SIGMA_FLOOR = 1e-3                 # dex: added to the difficulty so no σ_raw is zero


def snr_categories(snr: np.ndarray) -> np.ndarray:
    """SNR bin index 0..7 (engine.eval.bins.SNR edges), values beyond the ends clipped to
    the end bins (NaN → the lowest bin)."""
    inner = np.asarray(SNR.edges[1:-1], dtype=np.float64)
    s = np.nan_to_num(np.asarray(snr, dtype=np.float64), nan=-np.inf)
    return np.searchsorted(inner, s, side="right").astype(np.int64)


def merge_small(cats: np.ndarray, min_per_bin: int) -> dict[int, int]:
    """Map each category to itself, or — when it has fewer than `min_per_bin` rows — to
    its neighbour towards the middle, repeatedly, until every kept one is big enough."""
    n_cat = len(SNR.labels)
    counts = np.bincount(cats, minlength=n_cat).astype(int)
    target = {c: c for c in range(n_cat)}
    mid = (n_cat - 1) / 2
    order = sorted(range(n_cat), key=lambda c: -abs(c - mid))     # outside in
    for c in order:
        if counts[c] >= min_per_bin or counts.sum() == counts[c]:
            continue
        step = 1 if c < mid else -1
        d = c + step
        counts[d] += counts[c]
        counts[c] = 0
        for k, v in target.items():
            if v == c:
                target[k] = d
    return target


@dataclass
class MondrianConformal:
    """Fit on validation (y, ŷ, snr[, σ_raw]); predict σ and the 68/95 % intervals."""

    min_per_bin: int = 50
    k: int = K_NEIGHBOURS
    method_: str = ""
    bin_map_: dict[int, int] = field(default_factory=dict)
    quantiles_: dict[str, dict[int, float]] = field(default_factory=dict)

    def fit(self, y, y_pred, snr, sigma_raw=None) -> MondrianConformal:
        from crepes import ConformalRegressor
        y, p = np.asarray(y, np.float64), np.asarray(y_pred, np.float64)
        if y.size < self.min_per_bin:
            raise ValueError(f"conformal calibration needs ≥ {self.min_per_bin} validation "
                             f"stars, got {y.size}")
        cats = snr_categories(snr)
        self.bin_map_ = merge_small(cats, self.min_per_bin)
        residuals = y - p
        if sigma_raw is None:
            sig = self._fit_difficulty(p, snr, residuals)
            self.method_ = f"knn-difficulty(k={self.k})"
        else:
            sig = np.maximum(np.asarray(sigma_raw, np.float64), SIGMA_FLOOR)
            self.method_ = "model-sigma"
        self._cr = ConformalRegressor().fit(residuals, sigmas=sig, bins=self._bins(cats))
        self.quantiles_ = self._quantiles(sig, cats, p)
        return self

    def predict(self, y_pred, snr, sigma_raw=None) -> dict[str, np.ndarray]:
        """{'sigma', 'sigma_raw', 'lo68', 'hi68', 'lo95', 'hi95'} (dex) per star."""
        p = np.asarray(y_pred, np.float64)
        cats = snr_categories(snr)
        if sigma_raw is None:
            sig = self._de.apply(self._features(p, snr)) + SIGMA_FLOOR
        else:
            sig = np.maximum(np.asarray(sigma_raw, np.float64), SIGMA_FLOOR)
        out = {"sigma_raw": sig}
        for level, tag in zip(LEVELS, ("68", "95")):
            iv = self._cr.predict_int(p, sigmas=sig, bins=self._bins(cats), confidence=level)
            out[f"lo{tag}"], out[f"hi{tag}"] = iv[:, 0], iv[:, 1]
        out["sigma"] = (out["hi68"] - out["lo68"]) / 2
        return out

    def describe(self) -> dict:
        """What metrics.json keeps about the calibration (per merged bin, q68 and q95)."""
        return {"method": self.method_, "library": _crepes_version(),
                "bin_map": {str(k): int(v) for k, v in self.bin_map_.items()},
                "quantiles": {t: {str(b): q for b, q in d.items()}
                              for t, d in self.quantiles_.items()}}

    # ------------------------------------------------------------------ helpers
    def _bins(self, cats: np.ndarray) -> np.ndarray:
        return np.array([self.bin_map_[int(c)] for c in cats], dtype=np.int64)

    def _features(self, p, snr) -> np.ndarray:
        f = np.column_stack([p, np.log(np.clip(np.nan_to_num(np.asarray(snr, np.float64),
                                                             nan=1.0), 0.1, None))])
        return (f - self._f_mu) / self._f_sd

    def _fit_difficulty(self, p, snr, residuals) -> np.ndarray:
        from crepes.extras import DifficultyEstimator
        raw = np.column_stack([p, np.log(np.clip(np.nan_to_num(np.asarray(snr, np.float64),
                                                               nan=1.0), 0.1, None))])
        self._f_mu, self._f_sd = raw.mean(0), np.where(raw.std(0) > 0, raw.std(0), 1.0)
        self._de = DifficultyEstimator().fit((raw - self._f_mu) / self._f_sd,
                                             residuals=residuals, k=self.k, scaler=False,
                                             beta=0.0, oob=True)
        return self._de.apply() + SIGMA_FLOOR

    def _quantiles(self, sig, cats, p) -> dict[str, dict[int, float]]:
        """q_α per merged bin, read back from crepes' intervals (for the record)."""
        out: dict[str, dict[int, float]] = {}
        bins = self._bins(cats)
        for level, tag in zip(LEVELS, ("68", "95")):
            out[tag] = {}
            for b in sorted(set(bins.tolist())):
                iv = self._cr.predict_int(np.zeros(1), sigmas=np.ones(1),
                                          bins=np.array([b]), confidence=level)
                out[tag][int(b)] = float(iv[0, 1])
        return out


def _crepes_version() -> str:
    try:
        from importlib.metadata import version
        return f"crepes {version('crepes')}"
    except Exception:  # noqa: BLE001 - informational only
        return "crepes"
