"""The physical ceiling (docs/analyses.md, `ceiling`): R²_max from per-spectrum CRLBs.

Per bin of spectra with marginal CRLBs c_i (dex²) and a label variance Var:
  * `r2_max_pop`    = 1 − mean(min(c_i, Var))/Var, Var = the whole test split's label
                      variance (population bound; a spectrum can at worst be predicted by
                      the mean, hence the min) — engine.eval.r2max.r2_max;
  * `r2_max_bin`    = the same with the bin's own label variance (comparable with a
                      model's within-bin R², so the gap uses it);
  * `r2_max_median` = median_i clip(1 − c_i/Var, 0, 1) (what the research reported);
  * `r2_max_bayes`  = 1 − mean(b_i)/Var with b_i = 1/(1/c_i + 1/Var): a Gaussian prior of
                      variance Var adds information 1/Var to each spectrum's Fisher
                      information (van Trees-style), so b_i ≤ min(c_i, Var); models that
                      shrink to the prior are bounded by it, not by the plain CRLB;
  * σ_CRLB percentiles (p10/p50/p90 of √c_i), median Schur ratio when stored.
For a run: within-bin R², gap = r2_max_bin − R², η = mean(c_i)/MSE (eval.ceiling).

Grid Fisher (`grid_crlb`, research V2/V3): for a file whose params sit on a regular grid,
J = ∂μ/∂θ by central differences along each grid axis (step = the grid step);
axes = the columns among GRID_AXES with ≥ 2 unique values and regular steps
(std(diff)/median(diff) < 0.1, the research's rule). An edge node with one neighbour on an
axis gets the one-sided difference; a node with none on some axis is skipped (failed).
F = Jᵀ diag(1/(noise_level·error)²) J; CRLB = 1/(F_gg − F_gη F_ηη⁻¹ F_ηg) (Schur
complement, solved, never inverted); a non-positive Schur term fails the node."""

from __future__ import annotations

from typing import Any

import numpy as np

from engine.eval import bins as B
from engine.eval.r2max import efficiency, label_variance, r2_max

GRID_AXES = ("T_eff", "log_g", "M_H", "C_M", "a_M")


def r2_max_median(crlb: np.ndarray, var: float) -> float:
    c = np.asarray(crlb, np.float64)
    c = c[np.isfinite(c)]
    return float(np.median(np.clip(1 - c / var, 0, 1))) if c.size and var > 0 else np.nan


def r2_max_bayes(crlb: np.ndarray, var: float) -> float:
    c = np.asarray(crlb, np.float64)
    c = c[np.isfinite(c)]
    if not c.size or not var > 0:
        return np.nan
    b = 1.0 / (1.0 / np.maximum(c, 1e-300) + 1.0 / var)
    return float(1.0 - np.mean(b) / var)


def ceiling_stats(crlb, y, var_pop: float, schur=None) -> dict[str, Any]:
    """Every ceiling number of one set of spectra."""
    c = np.asarray(crlb, np.float64)
    ok = np.isfinite(c)
    sig = np.sqrt(c[ok]) if ok.any() else np.array([np.nan])
    out = {"n": int(len(c)), "n_crlb": int(ok.sum()), "r2_max_pop": r2_max(c, var_pop),
           "r2_max_bin": r2_max(c, label_variance(y)),
           "r2_max_median": r2_max_median(c, var_pop), "r2_max_bayes": r2_max_bayes(c, var_pop)}
    out.update({f"sigma_p{q}": float(np.percentile(sig, q)) for q in (10, 50, 90)})
    if schur is not None and np.isfinite(schur).any():
        out["schur_median"] = float(np.nanmedian(schur))
    return out


def scheme_values(scheme: str, meta) -> np.ndarray:
    col = {"snr": "snr", "mag": "mag"}[scheme]
    return np.asarray(meta[col], dtype=np.float64)


def dataset_records(meta, var: float | None = None) -> list[dict[str, Any]]:
    """Ceiling per fixed SNR bin and per magnitude bin (+ overall) of a test split."""
    y = np.asarray(meta["log_g"], np.float64)
    crlb = np.asarray(meta["crlb_log_g"], np.float64)
    schur = np.asarray(meta["crlb_schur"], np.float64) if "crlb_schur" in meta else None
    v = label_variance(y) if var is None else float(var)
    recs = [{"section": "dataset", "scheme": "all", "bin": 0, "label": "all",
             "var": v, **ceiling_stats(crlb, y, v, schur)}]
    for sch in (B.SNR, B.MAG):
        vals = scheme_values(sch.name, meta)
        idx = sch.assign(vals)
        for b, ((lo, hi), label) in enumerate(zip(sch.bounds(), sch.labels)):
            m = idx == b
            recs.append({"section": "dataset", "scheme": sch.name, "bin": b, "label": label,
                         "lo": lo, "hi": hi,
                         **ceiling_stats(crlb[m], y[m], v, None if schur is None else schur[m])})
    return recs


def run_records(run_id: str, model: str, preds, var: float) -> list[dict[str, Any]]:
    """A run's within-bin R² beside the ceiling of the same rows."""
    from engine.eval.metrics import r2

    y = preds["y_true"].to_numpy(np.float64)
    p = preds["y_pred"].to_numpy(np.float64)
    crlb = preds["crlb_log_g"].to_numpy(np.float64)
    recs = []
    for sch in (B.SNR, B.MAG):
        idx = sch.assign(preds[sch.column].to_numpy(np.float64))
        for b, ((lo, hi), label) in enumerate(zip(sch.bounds(), sch.labels)):
            m = idx == b
            st = ceiling_stats(crlb[m], y[m], var)
            rr = r2(y[m], p[m])
            recs.append({"section": "run", "run_id": run_id, "model": model,
                         "scheme": sch.name, "bin": b, "label": label, "lo": lo, "hi": hi,
                         "n": int(m.sum()), "r2": rr, "r2_max_bin": st["r2_max_bin"],
                         "r2_max_pop": st["r2_max_pop"], "gap": st["r2_max_bin"] - rr,
                         "eta": efficiency(crlb[m], y[m], p[m]) if m.any() else np.nan})
    return recs


# ------------------------------------------------------------------ grid Fisher

def detect_axes(params, candidates=GRID_AXES, tol: float = 0.1) -> list[tuple[str, float]]:
    """(column, step) of each regular grid axis: ≥ 2 unique values, regular steps."""
    axes = []
    for c in candidates:
        if c not in params.columns:
            continue
        u = np.unique(np.asarray(params[c], np.float64))
        u = u[np.isfinite(u)]
        if u.size < 2:
            continue
        d = np.diff(u)
        med = float(np.median(d))
        if med > 0 and float(np.std(d)) / med < tol:
            axes.append((c, med))
    return axes


def grid_crlb(flux: np.ndarray, error: np.ndarray, params, *, noise_level: float = 1.0,
              target: str = "log_g", axes: list[tuple[str, float]] | None = None,
              edge: str = "one-sided") -> dict[str, np.ndarray]:
    """Per grid node: crlb (marginal), crlb_cond (1/F_gg), schur (F_eff/F_gg), ok."""
    axes = detect_axes(params) if axes is None else axes
    names = [a for a, _ in axes]
    if target not in names:
        raise ValueError(f"{target} is not a regular grid axis (axes: {names})")
    g = names.index(target)
    lo = np.array([np.nanmin(params[a].to_numpy(np.float64)) for a in names])
    steps = np.array([s for _, s in axes])
    nodes = np.rint((params[names].to_numpy(np.float64) - lo) / steps).astype(np.int64)
    where = {tuple(n): i for i, n in enumerate(nodes)}
    n, d = len(nodes), len(names)
    out = {k: np.full(n, np.nan) for k in ("crlb", "crlb_cond", "schur")}
    out["ok"] = np.zeros(n, bool)
    flux = np.asarray(flux, np.float64)
    w = 1.0 / (noise_level * np.asarray(error, np.float64)) ** 2
    for i in range(n):
        J = np.empty((flux.shape[1], d))
        good = True
        for k in range(d):
            up, dn = nodes[i].copy(), nodes[i].copy()
            up[k] += 1
            dn[k] -= 1
            iu, idn = where.get(tuple(up)), where.get(tuple(dn))
            if iu is not None and idn is not None:
                J[:, k] = (flux[iu] - flux[idn]) / (2 * steps[k])
            elif edge == "one-sided" and (iu is not None or idn is not None):
                J[:, k] = (flux[iu] - flux[i]) / steps[k] if iu is not None \
                    else (flux[i] - flux[idn]) / steps[k]
            else:
                good = False
                break
        if not good:
            continue
        F = J.T @ (J * w[i][:, None])
        eta = [k for k in range(d) if k != g]
        try:
            corr = F[g, eta] @ np.linalg.solve(F[np.ix_(eta, eta)], F[eta, g]) if eta else 0.0
        except np.linalg.LinAlgError:
            continue
        eff = F[g, g] - corr
        if not np.isfinite(eff) or eff <= 0:
            continue
        out["crlb"][i], out["crlb_cond"][i] = 1.0 / eff, 1.0 / F[g, g]
        out["schur"][i], out["ok"][i] = eff / F[g, g], True
    return out


def grid_records(res: dict[str, np.ndarray], params, var: float | None = None
                 ) -> list[dict[str, Any]]:
    """Research-style summaries per magnitude (or overall): R²_max = clip(1 − CRLB/Var,
    0, 1) per node; Var defaults to the population variance of the grid's log g nodes."""
    lg = params["log_g"].to_numpy(np.float64)
    v = float(np.var(np.unique(lg))) if var is None else float(var)
    mags = params["mag"].to_numpy(np.float64) if "mag" in params.columns \
        else np.full(len(lg), np.nan)
    groups = [("all", np.ones(len(lg), bool))]
    um = np.unique(mags[np.isfinite(mags)])
    if um.size > 1:
        groups += [(f"mag {m:g}", mags == m) for m in um]
    recs = []
    for label, m in groups:
        c = res["crlb"][m]
        okc = c[np.isfinite(c)]
        r2m = np.clip(1 - okc / v, 0, 1)
        sig = np.sqrt(okc) if okc.size else np.array([np.nan])
        recs.append({"section": "grid", "scheme": "grid", "label": label, "var": v,
                     "n": int(m.sum()), "n_failed": int(m.sum() - okc.size),
                     "r2_max_median": float(np.median(r2m)) if okc.size else np.nan,
                     "r2_max_mean": float(np.mean(r2m)) if okc.size else np.nan,
                     "r2_max_p10": float(np.percentile(r2m, 10)) if okc.size else np.nan,
                     "r2_max_p90": float(np.percentile(r2m, 90)) if okc.size else np.nan,
                     "r2_max_pop": r2_max(okc, v), "r2_max_bayes": r2_max_bayes(okc, v),
                     "sigma_p10": float(np.percentile(sig, 10)),
                     "sigma_p50": float(np.percentile(sig, 50)),
                     "sigma_p90": float(np.percentile(sig, 90)),
                     "schur_median": float(np.nanmedian(res["schur"][m])) if okc.size else np.nan,
                     "crlb_orders": float(np.log10(okc.max() / okc.min())) if okc.size else np.nan})
    return recs
