"""The one evaluation protocol: every model, every run, the same metrics and bins.

`evaluate(...)` turns test-split predictions (dex) plus their meta columns into an
`Evaluation`; `Evaluation.to_json()` is exactly what a run writes to metrics.json and what
the store ingests. Nothing else computes headline metrics (docs/dev-contracts.md,
research pitfall 1)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from engine.eval import bins as B
from engine.eval.bootstrap import bootstrap_ci
from engine.eval.r2max import efficiency, label_variance, r2_max
from engine.eval.metrics import point_metrics
from engine.jsonsafe import json_safe

PROTOCOL_VERSION = 1
EDGE_CONVENTION = ("[lo,hi) with the last bin of each axis closed [lo,hi]; "
                   "snr_l2 uses (lo,hi] (X<=2, L (2,4], M (4,7], H >7); out of range = uncovered")
BIN_FIELDS = ("scheme", "bin", "label", "lo", "hi", "n", "r2", "r2_lo", "r2_hi", "mae",
              "rmse", "bias", "r2_max", "r2_max_pop", "eta")


@dataclass(frozen=True)
class Evaluation:
    """Scores of one prediction set. `overall`: metrics over all test rows; `bins`: one
    dict per (scheme, bin) with the BIN_FIELDS keys; `extra`: subsets and bookkeeping;
    `eval_key`: dataset_fingerprint, split, noise_level, realisation (what makes two
    numbers comparable)."""

    overall: dict[str, Any]
    bins: list[dict[str, Any]]
    extra: dict[str, Any] = field(default_factory=dict)
    eval_key: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """metrics.json content: plain JSON (NaN → null)."""
        return json_safe({"overall": self.overall, "bins": self.bins, "extra": self.extra,
                          "eval_key": self.eval_key})

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Evaluation:
        return cls(overall=dict(data.get("overall") or {}), bins=list(data.get("bins") or []),
                   extra=dict(data.get("extra") or {}), eval_key=dict(data.get("eval_key") or {}))

    def summary_line(self) -> str:
        """One line for logs and the CLI: R² with its CI, MAE, RMSE, n."""
        o = self.overall
        return (f"R² {_f(o.get('r2'))} [{_f(o.get('r2_lo'))}, {_f(o.get('r2_hi'))}]  "
                f"MAE {_f(o.get('mae'))} dex  RMSE {_f(o.get('rmse'))} dex  "
                f"bias {_f(o.get('bias'), '+.4f')}  n={o.get('n')}")


def evaluate(y_true: np.ndarray, y_pred: np.ndarray, meta: pd.DataFrame, *,
             eval_key: Mapping[str, Any], n_boot: int = 200, seed: int = 0) -> Evaluation:
    """Score predictions (dex) on the frozen noisy test split. `meta` is aligned row by
    row and holds snr, snr_l2, mag, T_eff, M_H (missing columns skip their scheme) and
    optionally crlb_log_g (enables R²_max and η)."""
    y = np.asarray(y_true, dtype=np.float64).ravel()
    p = np.asarray(y_pred, dtype=np.float64).ravel()
    if y.shape != p.shape or len(meta) != y.size:
        raise ValueError(f"evaluate: y_true {y.shape}, y_pred {p.shape} and meta "
                         f"({len(meta)} rows) must be aligned")
    crlb = _column(meta, "crlb_log_g")
    var_pop = label_variance(y)
    overall = _scored(y, p, crlb, var_pop, n_boot, seed)
    bins, skipped = _all_bins(y, p, meta, crlb, var_pop, n_boot, seed)
    extra = {"protocol_version": PROTOCOL_VERSION, "edge_convention": EDGE_CONVENTION,
             "n_boot": n_boot, "seed": seed, "ci": "percentile 2.5/97.5",
             "var_pop": var_pop, "n_nonfinite_pred": int(np.sum(~np.isfinite(p))),
             "skipped_schemes": skipped, "subsets": _subsets(y, p, meta, crlb, var_pop,
                                                             n_boot, seed)}
    return Evaluation(overall=overall, bins=bins, extra=extra, eval_key=dict(eval_key))


def _scored(y: np.ndarray, p: np.ndarray, crlb: np.ndarray | None, var_pop: float,
            n_boot: int, seed: int) -> dict[str, Any]:
    """Point metrics + bootstrap CIs (+ ceiling when CRLBs exist) of one row set."""
    out: dict[str, Any] = point_metrics(y, p)
    out.update(bootstrap_ci(y, p, n_boot=n_boot, seed=seed))
    if crlb is not None:
        out["r2_max_pop"] = r2_max(crlb, var_pop)
        out["r2_max"] = r2_max(crlb, label_variance(y))
        out["eta"] = efficiency(crlb, y, p)
    return out


def _subsets(y: np.ndarray, p: np.ndarray, meta: pd.DataFrame, crlb: np.ndarray | None,
             var_pop: float, n_boot: int, seed: int) -> dict[str, Any]:
    """`covered`: the rows inside the 9 Teff×[M/H] bins (MoE comparisons use it)."""
    if not {"T_eff", "M_H"} <= set(meta.columns):
        return {}
    mask = B.assign_teff_mh(meta["T_eff"].to_numpy(), meta["M_H"].to_numpy()) >= 0
    c = None if crlb is None else crlb[mask]
    sub = _scored(y[mask], p[mask], c, var_pop, n_boot, seed)
    sub["coverage"] = float(mask.mean()) if mask.size else math.nan
    return {"covered": sub}


def _all_bins(y: np.ndarray, p: np.ndarray, meta: pd.DataFrame, crlb: np.ndarray | None,
              var_pop: float, n_boot: int, seed: int
              ) -> tuple[list[dict[str, Any]], list[str]]:
    rows: list[dict[str, Any]] = []
    skipped: list[str] = []
    for k, scheme in enumerate(B.INTERVAL_SCHEMES):
        values = y if scheme.name == "logg" else _column(meta, scheme.column)
        if values is None:
            skipped.append(scheme.name)
            continue
        idx = scheme.assign(values)
        for b, ((lo, hi), label) in enumerate(zip(scheme.bounds(), scheme.labels)):
            rows.append(_bin_row(scheme.name, b, label, lo, hi, idx == b, y, p, crlb,
                                 var_pop, n_boot, np.random.SeedSequence([seed, k, b])))
    if {"T_eff", "M_H"} <= set(meta.columns):
        idx = B.assign_teff_mh(meta["T_eff"].to_numpy(), meta["M_H"].to_numpy())
        for b, label in enumerate(B.TEFF_MH_LABELS):
            rows.append(_bin_row("teff_mh", b, label, None, None, idx == b, y, p, crlb,
                                 var_pop, n_boot, np.random.SeedSequence([seed, 9, b])))
    else:
        skipped.append("teff_mh")
    return rows, skipped


def _bin_row(scheme: str, b: int, label: str, lo: float | None, hi: float | None,
             mask: np.ndarray, y: np.ndarray, p: np.ndarray, crlb: np.ndarray | None,
             var_pop: float, n_boot: int, seq: np.random.SeedSequence) -> dict[str, Any]:
    """One per-bin record (BIN_FIELDS); metrics are NaN for an empty bin."""
    yb, pb = y[mask], p[mask]
    m = point_metrics(yb, pb)
    ci = bootstrap_ci(yb, pb, n_boot=n_boot, seed=seq)
    row = {"scheme": scheme, "bin": b, "label": label,
           "lo": _finite_or_none(lo), "hi": _finite_or_none(hi), "n": m["n"],
           "r2": m["r2"], "r2_lo": ci["r2_lo"], "r2_hi": ci["r2_hi"], "mae": m["mae"],
           "rmse": m["rmse"], "bias": m["bias"], "r2_max": None, "r2_max_pop": None,
           "eta": None}
    if crlb is not None:
        cb = crlb[mask]
        row.update(r2_max=r2_max(cb, label_variance(yb)), r2_max_pop=r2_max(cb, var_pop),
                   eta=efficiency(cb, yb, pb))
    return row


def _column(meta: pd.DataFrame, name: str) -> np.ndarray | None:
    """A numeric meta column, or None when absent or entirely null."""
    if name not in meta.columns:
        return None
    v = pd.to_numeric(meta[name], errors="coerce").to_numpy(dtype=np.float64)
    return None if not np.isfinite(v).any() else v


def _finite_or_none(x: Any) -> float | None:
    return None if x is None or not np.isfinite(x) else float(x)


def _f(x: Any, fmt: str = ".4f") -> str:
    return "—" if x is None or (isinstance(x, float) and not math.isfinite(x)) else format(x, fmt)
