"""`moe oracle` and `moe gate`: load the splits, fit the experts, score, return an
AnalysisResult (engine.analysis.record). Both commands fit the experts the same way, so
a gate's ρ always refers to the oracle and global model of the same run of this code."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from engine.analysis.moe import oracle as O
from engine.analysis.split_reads import CHUNK, split_meta, stream_rows
from engine.analysis.moe.cache import load, store
from engine.analysis.moe.experts import EXPERT_KINDS, ExpertSet, fit_experts
from engine.analysis.moe.gate_features import FEATURE_SETS, PCA_FIT_ROWS, GateFeaturizer
from engine.analysis.moe.gates import GATES, ROUTINGS, make_gate, route
from engine.analysis.moe.assign import OUT_OF_RANGE, MoeBins, get_bins
from engine.analysis.record import AnalysisResult
from engine.analysis.moe.rho import N_BOOT, paired_r2, rho_with_ci
from engine.errors import SpecError
from engine.eval.bootstrap import percentile_ci
from engine.eval.metrics import mae, r2
from engine.events import Callbacks, emit


@dataclass(frozen=True)
class MoeConfig:
    """What an MoE analysis was asked to do (built by the CLI, recorded as params)."""

    dataset: str = "default"
    bins: str = "teff-mh"
    expert: str = "ridge"
    size: int = 10_000
    noise_level: float = 1.0
    seed: int = 0
    out_of_range: str = "clamp"
    n_boot: int = N_BOOT
    gate: str | None = None
    routing: str | None = None
    tau: float | None = None
    features: str | None = None

    def __post_init__(self) -> None:
        get_bins(self.bins)
        checks = (("expert", self.expert, EXPERT_KINDS), ("out_of_range", self.out_of_range,
                  OUT_OF_RANGE), ("gate", self.gate, GATES), ("routing", self.routing, ROUTINGS),
                  ("features", self.features, FEATURE_SETS))
        for key, value, allowed in checks:  # fail before any expert is fitted
            if value is not None and value not in allowed:
                raise SpecError(f"unknown {key} {value!r}", key=key,
                                hint=f"use one of: {', '.join(allowed)}")
        if self.tau is not None and not 0.0 <= self.tau <= 1.0:
            raise SpecError(f"tau must be in [0, 1], got {self.tau}", key="tau")


@dataclass
class _Fitted:
    scheme: MoeBins
    experts: ExpertSet
    test_y: np.ndarray
    test_bins: np.ndarray
    in_range: np.ndarray
    P: np.ndarray
    g: np.ndarray
    params: dict[str, Any]
    splits: dict[str, Any]


def _params(cfg: MoeConfig, ds: Any, test: Any, val: Any) -> dict[str, Any]:
    """What the analysis records as its parameters, hence its id (AnalysisResult)."""
    params = {**{k: v for k, v in asdict(cfg).items() if v is not None},
              "dataset": ds.name, "dataset_fingerprint": ds.fingerprint(),
              "test_split": test.name, "val_split": val.name}
    if cfg.gate is not None:
        params.update(features=_features(cfg), tau=_tau(cfg))
    return params


def _features(cfg: MoeConfig) -> str:
    return cfg.features or ("quality10" if cfg.bins == "snr" else "phys13")


def _tau(cfg: MoeConfig) -> float:
    return cfg.tau if cfg.tau is not None else (0.4 if cfg.bins == "snr" else 0.5)


def planned_id(ws: Path, cfg: MoeConfig) -> str:
    """The id the oracle (cfg.gate None) or gate analysis will have, before any fit: a
    hash of its parameters, which name the data by fingerprint."""
    from engine.io.dataset import resolve_dataset

    ds = resolve_dataset(cfg.dataset, ws)
    kind = "moe_oracle" if cfg.gate is None else "moe_gate"
    return AnalysisResult(kind, _params(cfg, ds, ds.split("test"), ds.split("val")),
                          []).analysis_id


def _fit(ws: Path, cfg: MoeConfig, callbacks: Callbacks | None) -> _Fitted:
    from engine.io.dataset import resolve_dataset

    ds = resolve_dataset(cfg.dataset, ws)
    scheme = get_bins(cfg.bins)
    train, val, test = ds.train(cfg.size), ds.split("val"), ds.split("test")
    nl = cfg.noise_level
    tr_bins, _ = scheme.assign(split_meta(train, nl), out_of_range=cfg.out_of_range)
    val_meta = split_meta(val, nl)
    val_X = val.noisy(nl)
    val_bins, _ = scheme.assign(val_meta, out_of_range=cfg.out_of_range)
    ex = _experts(ws, cfg, ds, train, val, tr_bins, val_X, val_meta["log_g"].to_numpy(),
                  val_bins, scheme.k, callbacks)
    meta = split_meta(test, nl)
    bins, in_range = scheme.assign(meta, out_of_range=cfg.out_of_range)
    emit(callbacks, "log", message=f"moe: predicting {test.n_rows} test rows")
    P, g = ex.predict_matrix(test.noisy(nl))
    params = _params(cfg, ds, test, val)
    splits = {"ds": ds, "train": train, "val": val, "test": test, "val_X": val_X,
              "val_meta": val_meta, "val_bins": val_bins, "tr_bins": tr_bins}
    return _Fitted(scheme, ex, meta["log_g"].to_numpy(), bins, in_range, P, g, params, splits)


def _experts(ws: Path, cfg: MoeConfig, ds, train, val, tr_bins, val_X, val_y, val_bins,
             k: int, callbacks: Callbacks | None) -> ExpertSet:
    """The global model and the experts, from the workspace's cache when an earlier
    analysis fitted the same ones (engine.analysis.moe.cache: the global model is shared by
    every bin scheme, the experts by a scheme's oracle and gates)."""
    doc = {"dataset": ds.fingerprint(), "train_rows": int(train.n_rows), "val": val.name,
           "expert": cfg.expert, "noise_level": cfg.noise_level, "seed": cfg.seed}
    fit_kw = {"kind": cfg.expert, "noise_level": cfg.noise_level, "seed": cfg.seed,
              "callbacks": callbacks}
    edoc = {**doc, "bins": cfg.bins, "out_of_range": cfg.out_of_range}
    experts = load(ws, "experts", edoc, callbacks)
    if experts is not None:
        return experts
    glob = load(ws, "global", doc, callbacks)
    fitted_glob, experts = fit_experts(train, tr_bins, val_X, val_y, val_bins, k=k,
                                       global_fit=glob, **fit_kw)
    if glob is None:
        store(ws, "global", doc, fitted_glob)
    store(ws, "experts", edoc, experts)
    return experts


def run_oracle(ws: Path, cfg: MoeConfig, callbacks: Callbacks | None = None) -> AnalysisResult:
    """Oracle routing per bin + the mask-aligned overall comparison with CIs."""
    f = _fit(ws, cfg, callbacks)
    oracle = O.route_oracle(f.P, f.g, f.test_bins)
    recs = O.bin_rows(f.test_y, oracle, f.g, f.test_bins, f.scheme.labels,
                      f.experts.n_train, f.experts.info)
    overall = O.overall_rows(f.test_y, oracle, f.g, f.in_range, n_boot=cfg.n_boot,
                             seed=cfg.seed)
    tr_in = f.splits["tr_bins"] >= 0
    for o in overall:
        o["n_out_of_range"] = int((~f.in_range).sum())
        o["train_coverage"] = float(tr_in.mean())
    summary = {o["subset"]: {k: o[k] for k in ("n", "r2_oracle", "r2_global", "delta_r2")}
               for o in overall}
    summary["global_alpha"] = f.experts.global_info.get("alpha")
    return AnalysisResult("moe_oracle", f.params, recs + overall, summary=summary)


def run_gate(ws: Path, cfg: MoeConfig, callbacks: Callbacks | None = None) -> AnalysisResult:
    """A learned gate over frozen experts: per-bin R², accuracy, confusion, ρ with CI."""
    if cfg.gate is None or cfg.routing is None:
        raise SpecError("a gate analysis needs --gate and --routing", key="gate")
    f = _fit(ws, cfg, callbacks)
    s = f.splits
    nl = cfg.noise_level
    kind, tau = _features(cfg), _tau(cfg)
    feat = GateFeaturizer(kind, s["test"].wave, nl)
    F_tr = _train_features(feat, s["train"], nl, cfg.seed)
    F_val = feat.transform(s["val_X"], s["val"].read("error"))
    F_te = feat.transform(s["test"].noisy(nl), s["test"].read("error"))
    gate = make_gate(cfg.gate, f.scheme.k)
    emit(callbacks, "log", message=f"moe: training the {cfg.gate} gate on {kind} features")
    if cfg.gate == "logreg":
        gate.fit(F_tr, s["tr_bins"], F_val, s["val_bins"], seed=cfg.seed)
    else:
        Pv, _gv = f.experts.predict_matrix(s["val_X"])
        gate.fit(F_val, Pv, s["val_meta"]["log_g"].to_numpy(), seed=cfg.seed)
    probs = gate.predict_proba(F_te)
    pred, fb = route(probs, f.P, f.g, cfg.routing, tau)
    oracle = O.route_oracle(f.P, f.g, f.test_bins)
    recs = _gate_records(f, pred, oracle, probs, fb, cfg)
    over = [r for r in recs if r.get("section") == "overall"]
    summary = {r["subset"]: {k: r.get(k) for k in ("n", "r2_gate", "r2_oracle", "r2_global",
                                                     "rho", "accuracy")} for r in over}
    summary["gate_C"] = getattr(gate, "C_", None)
    return AnalysisResult("moe_gate", f.params, recs, summary=summary)


def _train_features(feat: GateFeaturizer, train, nl: float, seed: int) -> np.ndarray:
    """The gate features of every training row, chunk by chunk. quality10 reads only the
    error arrays (no flux, no noise drawn); the phys sets read only the noisy flux, after
    fitting their PCA on the first PCA_FIT_ROWS noisy training rows. (At 1M rows each
    array is a 16 GB read: reading only what the features use halves the pass.)"""
    if feat.kind == "quality10":
        return np.concatenate([feat.transform(None, b["error"])
                               for _s, _e, b in train.iter_chunks(("error",), CHUNK)])
    if feat.n_pca:
        head, have = [], 0
        for _s, _e, x, _b in stream_rows(train, nl, seed, names=()):
            head.append(x)
            have += len(x)
            if have >= PCA_FIT_ROWS:
                break
        feat.fit(np.concatenate(head))
    return np.concatenate([feat.transform(x)
                           for _s, _e, x, _b in stream_rows(train, nl, seed, names=())])


def _gate_records(f: _Fitted, pred, oracle, probs, fb, cfg: MoeConfig) -> list[dict]:
    y, bins, k = f.test_y, f.test_bins, f.scheme.k
    arg = np.argmax(probs, axis=1)
    recs: list[dict[str, Any]] = []
    for b, label in enumerate(f.scheme.labels):
        m = bins == b
        recs.append({"section": "bin", "bin": b, "label": label, "n_test": int(m.sum()),
                     "r2_gate": r2(y[m], pred[m]), "r2_oracle": r2(y[m], oracle[m]),
                     "r2_global": r2(y[m], f.g[m]), "mae_gate": mae(y[m], pred[m]),
                     "accuracy": float(np.mean(arg[m] == b)) if m.any() else float("nan")})
    for subset, m in (("covered", f.in_range), ("all", np.ones_like(f.in_range, bool))):
        yy = y[m]
        rho, lo, hi = rho_with_ci(yy, pred[m], oracle[m], f.g[m], n_boot=cfg.n_boot,
                                  seed=cfg.seed)
        sb = paired_r2(yy, {"gate": pred[m]}, n_boot=cfg.n_boot, seed=cfg.seed)
        t = m & (bins >= 0)
        recs.append({"section": "overall", "subset": subset, "n": int(m.sum()),
                     "r2_gate": r2(yy, pred[m]), "r2_gate_ci": percentile_ci(sb["gate"]),
                     "r2_oracle": r2(yy, oracle[m]), "r2_global": r2(yy, f.g[m]),
                     "rho": rho, "rho_ci": (lo, hi), "mae_gate": mae(yy, pred[m]),
                     "accuracy": float(np.mean(arg[t] == bins[t])) if t.any() else float("nan"),
                     "fallback_rate": float(np.mean(fb[m])) if m.any() else float("nan")})
    conf = np.zeros((k, k), dtype=np.int64)
    ok = bins >= 0
    np.add.at(conf, (bins[ok], arg[ok]), 1)
    for i in range(k):
        for j in range(k):
            recs.append({"section": "confusion", "true_bin": i, "pred_bin": j,
                         "label": f"{f.scheme.labels[i]} → {f.scheme.labels[j]}",
                         "count": int(conf[i, j])})
    return recs
