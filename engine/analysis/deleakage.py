"""The error-vector de-leakage study (docs/analyses.md, `deleakage`).

Question: can a representation of the per-pixel `error` vector tell a gate the
observation quality (SNR) without telling it log g? For each strategy the same model —
Ridge α = 1 on StandardScaler'd features (engine.models.ridge.StreamingRidge, the
research's choice) — is fitted on the training rows to predict (a) log g and (b) the L2
SNR ‖flux‖/(‖error‖·noise_level); train and test R² are reported.
Passed ⇔ log g test R² < 0.05 AND SNR test R² > 0.5 (strict: 0.0500 fails).

Strategies (error = the stored nominal 1σ vector):
  S0 raw error · S1a error/median(flux) · S1b error/‖flux‖₂ ·
  S2 template scale: e₀ = mean training error vector (the research did not say how e₀ was
     built; the mean is the natural choice), features (s, ‖e − s·e₀‖) with s = eᵀe₀/‖e₀‖² ·
  S2b the coefficients of the first 3 principal components of the training error vectors ·
  S3 11 / 21 evenly spaced quantiles of each error vector ·
  S3b the 10 aggregate statistics (gate_features.quality_features) · S4 ‖error‖₂ only."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from engine.analysis.moe.gate_features import quality_features
from engine.eval.metrics import r2
from engine.io.snr import snr_l2

LOGG_MAX = 0.05
SNR_MIN = 0.5
STRATEGIES = {
    "S0_baseline": "raw error",
    "S1a_median_norm": "error / median(flux)",
    "S1b_norm_normalize": "error / ||flux||_2",
    "S2_template_scale": "scale s = e.e0/|e0|^2 (e0 = mean training error) + |e - s e0|",
    "S2b_multi_template_3": "3 PCA-template coefficients of the error",
    "S3_quantiles_11": "11 quantiles of the error",
    "S3_quantiles_21": "21 quantiles of the error",
    "S3b_aggregate_stats": "mean, std, min, max, median, sum, q25, q75, skew, kurtosis",
    "S4_snr_only": "||error||_2 only",
}


def passed(logg_r2: float, snr_r2: float) -> bool:
    """The research's strict rule: log g R² < 0.05 and SNR R² > 0.5."""
    return bool(logg_r2 < LOGG_MAX and snr_r2 > SNR_MIN)


@dataclass
class Fitted:
    """What the train-fitted strategies learned (template e₀, PCA)."""

    e0: np.ndarray
    pca: object


def fit_templates(err_train: np.ndarray) -> Fitted:
    from sklearn.decomposition import PCA

    e = np.asarray(err_train, dtype=np.float64)
    return Fitted(e.mean(axis=0), PCA(n_components=min(3, *e.shape), random_state=0).fit(e))


def represent(name: str, flux: np.ndarray, err: np.ndarray, fit: Fitted) -> np.ndarray:
    """The features of strategy `name` for rows (flux, err)."""
    e = np.asarray(err, dtype=np.float64)
    f = np.asarray(flux, dtype=np.float64)
    if name == "S0_baseline":
        return e
    if name == "S1a_median_norm":
        return e / np.median(f, axis=1, keepdims=True)
    if name == "S1b_norm_normalize":
        return e / np.linalg.norm(f, axis=1, keepdims=True)
    if name == "S2_template_scale":
        s = e @ fit.e0 / float(fit.e0 @ fit.e0)
        return np.column_stack([s, np.linalg.norm(e - s[:, None] * fit.e0, axis=1)])
    if name == "S2b_multi_template_3":
        return fit.pca.transform(e)
    if name.startswith("S3_quantiles_"):
        q = int(name.rsplit("_", 1)[1])
        return np.quantile(e, np.linspace(0, 1, q), axis=1).T
    if name == "S3b_aggregate_stats":
        return quality_features(e)
    if name == "S4_snr_only":
        return np.linalg.norm(e, axis=1, keepdims=True)
    raise KeyError(name)


def ridge_r2(Xtr, ytr, Xte, yte) -> tuple[float, float]:
    """(train R², test R²) of Ridge α=1 with StandardScaler semantics."""
    from engine.models.ridge import StreamingRidge

    m = StreamingRidge(alpha=1.0).fit(np.asarray(Xtr, np.float64), ytr)
    return r2(ytr, m.predict(np.asarray(Xtr, np.float64))), \
        r2(yte, m.predict(np.asarray(Xte, np.float64)))


def study(train: dict[str, np.ndarray], test: dict[str, np.ndarray],
          noise_level: float = 1.0, strategies=tuple(STRATEGIES)) -> list[dict]:
    """train/test: {'flux', 'error', 'log_g'} arrays. One record per strategy."""
    fit = fit_templates(train["error"])
    snr_tr = snr_l2(train["flux"], train["error"], noise_level)
    snr_te = snr_l2(test["flux"], test["error"], noise_level)
    out = []
    for name in strategies:
        Xtr = represent(name, train["flux"], train["error"], fit)
        Xte = represent(name, test["flux"], test["error"], fit)
        lg_tr, lg_te = ridge_r2(Xtr, train["log_g"], Xte, test["log_g"])
        sn_tr, sn_te = ridge_r2(Xtr, snr_tr, Xte, snr_te)
        out.append({"section": "strategy", "strategy": name, "definition": STRATEGIES[name],
                    "n_features": int(Xtr.shape[1]), "logg_r2_train": lg_tr,
                    "logg_r2_test": lg_te, "snr_r2_train": sn_tr, "snr_r2_test": sn_te,
                    "passed": passed(lg_te, sn_te)})
    return out
