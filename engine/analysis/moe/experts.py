"""Per-bin experts and the global model (docs/analyses.md, `moe oracle`): one regressor per bin
trained only on that bin's training spectra (bins by the TRUE label / true L2 SNR), and
one on all of them. Ridge experts are StreamingRidge with α chosen on the validation rows
of the same bin; LightGBM experts use the `lgbm-fast` preset with early stopping on them.

A bin with fewer than MIN_TRAIN training rows gets no expert: it is served by the global
model and recorded as such (`experts[k] is None`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from engine.analysis.split_reads import RowSubset
from engine.events import Callbacks, emit

MIN_TRAIN = 10
MIN_VAL = 5
GROUPED_CHUNK_ROWS = 8192   # rows per read of the grouped pass (each bin's SYRK gets ~1/k)
EXPERT_KINDS = ("ridge", "lgbm")


@dataclass
class ExpertSet:
    """Fitted global model + one expert per bin (None = served by the global model)."""

    kind: str
    global_model: Any
    experts: list[Any]
    n_train: list[int]
    info: list[dict[str, Any]] = field(default_factory=list)
    global_info: dict[str, Any] = field(default_factory=dict)

    def predict_matrix(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(P (n, K) expert predictions, g (n,) global prediction); a missing expert's
        column is the global prediction."""
        g = np.asarray(self.global_model.predict(X), dtype=np.float64)
        cols = [g if e is None else np.asarray(e.predict(X), dtype=np.float64)
                for e in self.experts]
        return np.column_stack(cols), g


def fit_global(train, val_X: np.ndarray, val_y: np.ndarray, *, kind: str,
               noise_level: float, seed: int, callbacks: Callbacks | None = None
               ) -> tuple[Any, dict[str, Any]]:
    """The global model on all training rows: (estimator, info)."""
    emit(callbacks, "log", message=f"moe: global {kind} on {train.n_rows} rows")
    rows = np.arange(train.n_rows)
    return _fit_one(kind, RowSubset(train, rows, noise_level, seed), val_X, val_y)


def fit_experts(train, train_bins: np.ndarray, val_X: np.ndarray, val_y: np.ndarray,
                val_bins: np.ndarray, *, k: int, kind: str, noise_level: float, seed: int,
                callbacks: Callbacks | None = None,
                global_fit: tuple[Any, dict[str, Any]] | None = None
                ) -> tuple[tuple[Any, dict[str, Any]], ExpertSet]:
    """Fit one expert per bin, and the global model on all training rows unless
    `global_fit` (a `fit_global` result for the same rows) is given: (global fit, experts).

    Ridge experts and the global Ridge come from ONE pass over the training rows
    (engine.models.ridge_stats.accumulate_groups: a Ridge fit depends on its rows only
    through sums, and the global sums are the bins' sums added), so at 1M rows the whole
    set costs one read of the training split instead of one per model. LightGBM experts
    each stream their own rows."""
    if kind == "ridge":
        return _fit_ridge_set(train, train_bins, val_X, val_y, val_bins, k=k,
                              noise_level=noise_level, seed=seed, callbacks=callbacks,
                              global_fit=global_fit)
    gm, ginfo = global_fit or fit_global(train, val_X, val_y, kind=kind,
                                         noise_level=noise_level, seed=seed,
                                         callbacks=callbacks)
    experts, n_train, info = [], [], []
    for b in range(k):
        rows = np.flatnonzero(train_bins == b)
        n_train.append(int(rows.size))
        if rows.size < MIN_TRAIN:
            experts.append(None)
            info.append(_no_expert())
            continue
        vX, vy, vinfo = _bin_val(val_X, val_y, val_bins, b)
        emit(callbacks, "log", message=f"moe: expert {b} ({kind}) on {rows.size} rows")
        est, inf = _fit_one(kind, RowSubset(train, rows, noise_level, seed), vX, vy)
        experts.append(est)
        info.append({**inf, "val_rows": vinfo})
        emit(callbacks, "progress", done=b + 1, total=k)
    return (gm, ginfo), ExpertSet(kind, gm, experts, n_train, info, ginfo)


def _fit_ridge_set(train, train_bins: np.ndarray, val_X: np.ndarray, val_y: np.ndarray,
                   val_bins: np.ndarray, *, k: int, noise_level: float, seed: int,
                   callbacks: Callbacks | None,
                   global_fit: tuple[Any, dict[str, Any]] | None
                   ) -> tuple[tuple[Any, dict[str, Any]], ExpertSet]:
    """The Ridge experts (and the global Ridge unless given) from one grouped pass."""
    from engine.models.ridge_stats import accumulate_groups

    bins = np.asarray(train_bins, dtype=np.int64)
    counts = np.bincount(bins[bins >= 0], minlength=k)[:k]
    fit_bin = counts >= MIN_TRAIN
    groups = np.where((bins >= 0) & fit_bin[np.clip(bins, 0, k - 1)], bins, -1)
    emit(callbacks, "log", message=f"moe: one pass over {train.n_rows} training rows for "
                                   f"{int(fit_bin.sum())} ridge experts"
                                   + ("" if global_fit else " and the global ridge"))
    source = RowSubset(train, np.arange(train.n_rows), noise_level, seed)
    stats, total = accumulate_groups(source, groups, k, GROUPED_CHUNK_ROWS, callbacks)
    if global_fit is None:
        emit(callbacks, "log", message=f"moe: global ridge on {train.n_rows} rows")
        global_fit = _ridge_from(total, val_X, val_y)
    del total
    gm, ginfo = global_fit
    experts, info = [], []
    for b in range(k):
        if stats[b] is None or not fit_bin[b]:
            experts.append(None)
            info.append(_no_expert())
            continue
        vX, vy, vinfo = _bin_val(val_X, val_y, val_bins, b)
        emit(callbacks, "log", message=f"moe: expert {b} (ridge) on {int(counts[b])} rows")
        est, inf = _ridge_from(stats[b], vX, vy)
        stats[b] = None                       # free its Gram matrix
        experts.append(est)
        info.append({**inf, "val_rows": vinfo})
        emit(callbacks, "progress", done=b + 1, total=k)
    return global_fit, ExpertSet("ridge", gm, experts, [int(c) for c in counts], info, ginfo)


def _ridge_from(stats, vX: np.ndarray, vy: np.ndarray) -> tuple[Any, dict[str, Any]]:
    """A StreamingRidge (the paper's α path, α chosen on (vX, vy)) from accumulated stats."""
    est = _paper_ridge().fit_stats(stats, eval_set=(vX, vy) if len(vy) >= 2 else None)
    return est, {"expert": "ridge", "alpha": float(est.alpha_)}


def _paper_ridge():
    """The MoE's Ridge: the research's α path, chosen on the bin's validation rows."""
    from engine.models.ridge import PAPER_ALPHAS, StreamingRidge

    return StreamingRidge(alphas=list(PAPER_ALPHAS), chunk_rows=4096)


def _bin_val(val_X: np.ndarray, val_y: np.ndarray, val_bins: np.ndarray, b: int):
    """A bin's own validation rows when it has MIN_VAL of them, else all validation rows."""
    vmask = val_bins == b
    if vmask.sum() >= MIN_VAL:
        return val_X[vmask], val_y[vmask], int(vmask.sum())
    return val_X, val_y, "all"


def _no_expert() -> dict[str, Any]:
    return {"expert": "global", "reason": f"n_train < {MIN_TRAIN}"}


def _fit_one(kind: str, source: RowSubset, vX: np.ndarray, vy: np.ndarray):
    if kind == "ridge":
        est = _paper_ridge().fit(source, eval_set=(vX, vy) if len(vy) >= 2 else None)
        return est, {"expert": "ridge", "alpha": float(est.alpha_)}
    if kind == "lgbm":
        from engine.models.lgbm import StreamingLGBM
        from engine.models.lgbm_adapter import LGBMAdapter

        p = dict(LGBMAdapter.presets["lgbm-fast"])
        p["metric"] = tuple(p["metric"])
        p["bin_construct_sample_cnt"] = min(int(p["bin_construct_sample_cnt"]), source.n_rows)
        est = StreamingLGBM(**p)
        est.fit(source, eval_set=(vX, vy) if len(vy) >= 2 else None)
        return est, {"expert": "lgbm", "best_iteration": int(est.best_iteration_)}
    from engine.errors import SpecError

    raise SpecError(f"unknown expert {kind!r}", key="expert", hint="use ridge or lgbm")
