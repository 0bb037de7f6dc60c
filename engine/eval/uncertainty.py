"""The one scoring protocol for predictive uncertainty (every model, every run).

Inputs per test star: the point prediction ŷ (dex), the calibrated σ (dex; the half-width
of the 68.27 % interval) and the 68.27 % / 95 % interval bounds. Outputs, overall and per
bin of the `snr`, `snr_l2` and `teff_mh` schemes (engine.eval.bins, same edges as R²):

* coverage of each interval with the binomial 95 % range around its nominal level for that
  bin's count, and a flag when the observed coverage lies outside it (an over- or
  under-confident model);
* mean interval width (dex);
* NLL and CRPS of the Gaussian N(ŷ, σ) (scoringrules: logs_normal, crps_normal);
* median σ_pred / σ_CRLB (σ_CRLB = √crlb_log_g, the per-star Cramér–Rao bound): how far the
  stated error bars sit above the physical limit (1 = at the bound).

A reliability curve (overall only) adds the observed coverage of the Gaussian N(ŷ, σ) at
several nominal levels. Why Gaussian for NLL/CRPS: one family for every model keeps the
scores comparable; the conformal intervals themselves are scored as stated."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from engine.eval import bins as B

LEVELS = (0.6827, 0.95)                      # the stated intervals (lo68/hi68, lo95/hi95)
RELIABILITY_LEVELS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.6827, 0.8, 0.9, 0.95, 0.99)
UQ_SCHEMES = ("snr", "snr_l2", "teff_mh")
RANGE_CONF = 0.95                            # binomial range used for the flags
COVERAGE_FIELDS = ("scheme", "bin", "label", "n", "nominal", "observed", "lo", "hi", "flag",
                   "width")
SCORE_FIELDS = ("scheme", "bin", "label", "n", "nll", "crps", "sigma_median",
                "sigma_crlb_ratio")


@dataclass(frozen=True)
class UQScore:
    """`coverage`: long rows (COVERAGE_FIELDS), one per (scheme, bin, nominal level), the
    overall rows having scheme 'all' (and the reliability levels); `scores`: one row per
    (scheme, bin) with SCORE_FIELDS; `extra`: how the σ was made (method, calibration)."""

    coverage: list[dict[str, Any]]
    scores: list[dict[str, Any]]
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"coverage": self.coverage, "scores": self.scores, "extra": self.extra}

    def overall(self, nominal: float) -> dict[str, Any] | None:
        return next((r for r in self.coverage if r["scheme"] == "all"
                     and abs(r["nominal"] - nominal) < 1e-9), None)

    def flagged(self) -> list[dict[str, Any]]:
        """Stated-interval rows whose coverage lies outside the binomial range."""
        return [r for r in self.coverage if r["flag"]]

    def summary_line(self) -> str:
        c68, c95 = self.overall(LEVELS[0]), self.overall(LEVELS[1])
        s = next((r for r in self.scores if r["scheme"] == "all"), {})
        return (f"coverage 68 % {_pct(c68)}  95 % {_pct(c95)}  width95 "
                f"{_g(c95 and c95['width'])} dex  NLL {_g(s.get('nll'))}  CRPS "
                f"{_g(s.get('crps'))}  σ/σ_CRLB {_g(s.get('sigma_crlb_ratio'))}"
                f"{'  FLAGGED' if self.flagged() else ''}")


def binomial_range(n: int, p: float, conf: float = RANGE_CONF) -> tuple[float, float]:
    """The central `conf` range of the observed fraction k/n when k ~ Binomial(n, p)."""
    if n <= 0:
        return math.nan, math.nan
    from scipy.stats import binom
    lo, hi = binom.interval(conf, n, p)
    return float(lo) / n, float(hi) / n


def score_uncertainty(y_true, y_pred, sigma, bounds: dict[str, np.ndarray],
                      meta: pd.DataFrame) -> UQScore:
    """Score one run's predictive distribution. `bounds` holds lo68, hi68, lo95, hi95 (dex);
    `meta` is aligned with the predictions (snr, snr_l2, T_eff, M_H, crlb_log_g: a missing
    column skips its scheme or the CRLB ratio)."""
    y = np.asarray(y_true, np.float64)
    mu = np.asarray(y_pred, np.float64)
    s = np.asarray(sigma, np.float64)
    ivals = [(np.asarray(bounds["lo68"], np.float64), np.asarray(bounds["hi68"], np.float64)),
             (np.asarray(bounds["lo95"], np.float64), np.asarray(bounds["hi95"], np.float64))]
    if not (y.shape == mu.shape == s.shape) or len(meta) != y.size:
        raise ValueError(f"score_uncertainty: y {y.shape}, ŷ {mu.shape}, σ {s.shape}, meta "
                         f"{len(meta)} rows must be aligned")
    crlb = _col(meta, "crlb_log_g")
    ok = np.isfinite(y) & np.isfinite(mu) & np.isfinite(s) & (s > 0)
    coverage, scores = [], []
    for scheme, b, label, mask in _groups(meta, y.size):
        m = mask & ok
        coverage += _coverage_rows(scheme, b, label, m, y, ivals)
        scores.append(_score_row(scheme, b, label, m, y, mu, s, crlb))
    coverage += _reliability_rows(ok, y, mu, s)
    return UQScore(coverage=coverage, scores=scores)


def _groups(meta: pd.DataFrame, n: int):
    """(scheme, bin, label, mask): 'all' first, then every bin of the UQ schemes."""
    yield "all", 0, "all", np.ones(n, bool)
    for scheme in B.INTERVAL_SCHEMES:
        if scheme.name not in UQ_SCHEMES:
            continue
        values = _col(meta, scheme.column)
        if values is None:
            continue
        idx = scheme.assign(values)
        for b, label in enumerate(scheme.labels):
            yield scheme.name, b, label, idx == b
    teff, mh = _col(meta, "T_eff"), _col(meta, "M_H")
    if "teff_mh" in UQ_SCHEMES and teff is not None and mh is not None:
        idx = B.assign_teff_mh(teff, mh)
        for b, label in enumerate(B.TEFF_MH_LABELS):
            yield "teff_mh", b, label, idx == b


def _coverage_rows(scheme, b, label, m, y, ivals) -> list[dict[str, Any]]:
    rows = []
    n = int(m.sum())
    for level, (lo, hi) in zip(LEVELS, ivals):
        inside = (y[m] >= lo[m]) & (y[m] <= hi[m])
        obs = float(inside.mean()) if n else math.nan
        r_lo, r_hi = binomial_range(n, level)
        flag = bool(n > 0 and not (r_lo <= obs <= r_hi))
        width = float(np.mean(hi[m] - lo[m])) if n else math.nan
        rows.append({"scheme": scheme, "bin": b, "label": label, "n": n, "nominal": level,
                     "observed": obs, "lo": r_lo, "hi": r_hi, "flag": flag, "width": width})
    return rows


def _reliability_rows(ok, y, mu, s) -> list[dict[str, Any]]:
    """Overall coverage of the Gaussian N(ŷ, σ) central intervals at RELIABILITY_LEVELS
    (scheme 'gauss'): the reliability diagram's points, flagged like the stated ones."""
    from scipy.stats import norm
    z = np.abs(y[ok] - mu[ok]) / s[ok]
    n = int(ok.sum())
    rows = []
    for level in RELIABILITY_LEVELS:
        k = norm.ppf(0.5 + level / 2)
        obs = float(np.mean(z <= k)) if n else math.nan
        r_lo, r_hi = binomial_range(n, level)
        rows.append({"scheme": "gauss", "bin": 0, "label": "all", "n": n, "nominal": level,
                     "observed": obs, "lo": r_lo, "hi": r_hi,
                     "flag": bool(n > 0 and not (r_lo <= obs <= r_hi)),
                     "width": float(np.mean(2 * k * s[ok])) if n else math.nan})
    return rows


def _score_row(scheme, b, label, m, y, mu, s, crlb) -> dict[str, Any]:
    import scoringrules as sr
    n = int(m.sum())
    row = {"scheme": scheme, "bin": b, "label": label, "n": n, "nll": math.nan,
           "crps": math.nan, "sigma_median": math.nan, "sigma_crlb_ratio": math.nan}
    if not n:
        return row
    row["nll"] = float(np.mean(sr.logs_normal(y[m], mu[m], s[m])))
    row["crps"] = float(np.mean(sr.crps_normal(y[m], mu[m], s[m])))
    row["sigma_median"] = float(np.median(s[m]))
    if crlb is not None:
        c = crlb[m]
        good = np.isfinite(c) & (c > 0)
        if good.any():
            row["sigma_crlb_ratio"] = float(np.median(s[m][good] / np.sqrt(c[good])))
    return row


def _col(meta: pd.DataFrame, name: str) -> np.ndarray | None:
    if name not in meta.columns:
        return None
    v = pd.to_numeric(meta[name], errors="coerce").to_numpy(dtype=np.float64)
    return v if np.isfinite(v).any() else None


def _pct(r) -> str:
    return "—" if not r or r["observed"] != r["observed"] else f"{100 * r['observed']:.1f} %"


def _g(x) -> str:
    return "—" if x is None or x != x else f"{x:.4g}"
