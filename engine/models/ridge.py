"""Ridge regression on standardized flux, fitted from streamed chunks.

Same estimator as the research's ``make_pipeline(StandardScaler(), Ridge(alpha))`` (one
closed-form solve, y in dex) but never holds X in RAM: one pass accumulates, in float64,
the shifted sums Σ(x−K), Σ(x−K)(x−K)ᵀ, Σ(x−K)(y−k) (K = first chunk's mean, so the
subtraction of the mean at the end loses no precision), which give the mean, the
population variance (StandardScaler) and the centred Gram matrix. An eigendecomposition of
the standardized Gram matrix then solves every α of a grid with one matrix-vector product
each, so the α path (1e2…1e8, half-decades) is scored on the validation split for
almost nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from engine.eval import metrics
from engine.events import Callbacks, emit
from engine.models.base import ChunkSource, as_source
from engine.models.ridge_stats import RidgeStats, accumulate

# The research's α path: logspace 1e2…1e8 in half-decades (13 points).
PAPER_ALPHAS: tuple[float, ...] = tuple(float(a) for a in np.logspace(2, 8, 13))


class StreamingRidge:
    """sklearn-style Ridge on StandardScaler'd inputs, fitted from chunks.

    Parameters are stored as given. ``alphas`` (a grid) is scored on ``eval_set`` and the
    best α (highest validation R², in dex) is kept; without an eval set ``alpha`` is used.

    Learned: ``mean_``, ``var_``, ``scale_`` (StandardScaler's), ``coef_`` (in standardized
    units, like ``Ridge.coef_`` inside the pipeline), ``intercept_``, ``alpha_``,
    ``alpha_curve_`` (list of {alpha, val_r2, val_mae}), ``n_samples_seen_``,
    ``n_features_in_``.
    """

    def __init__(self, alpha: float = 1e5, alphas: Sequence[float] | None = None,
                 standardize: bool = True, chunk_rows: int = 4096) -> None:
        self.alpha = alpha
        self.alphas = alphas
        self.standardize = standardize
        self.chunk_rows = chunk_rows

    # ------------------------------------------------------------------ fit
    def fit(self, X: Any, y: Any = None, *, eval_set: Any = None,
            callbacks: Callbacks | None = None,
            should_stop: Callable[[], bool] | None = None) -> StreamingRidge:
        """Fit on an array (with ``y``) or a ChunkSource; ``eval_set`` is ``(X_val,
        y_val)`` or a ChunkSource used to choose α from ``alphas``."""
        source = as_source(X, y)
        # Fewer rows than features (small sizes, MoE experts): keep the rows and solve in
        # the dual (n × n kernel) — exact, and far cheaper than a p × p eigensolve.
        dual = int(source.n_rows) < int(source.n_features)
        stats = accumulate(source, int(self.chunk_rows), callbacks, should_stop,
                           keep_rows=dual)
        return self.fit_stats(stats, eval_set=eval_set, callbacks=callbacks)

    def fit_stats(self, stats: RidgeStats, *, eval_set: Any = None,
                  callbacks: Callbacks | None = None) -> StreamingRidge:
        """Fit from statistics already accumulated (engine.models.ridge_stats): what `fit`
        does after its pass, so the MoE analyses can fit many models from one pass.
        `stats.rows` present → the dual solve. The statistics are consumed."""
        self.n_samples_seen_ = stats.n
        self.n_features_in_ = stats.mean.shape[0]
        self.mean_ = stats.mean
        self.var_ = np.maximum(np.diag(stats.scatter) / stats.n, 0.0)
        self.scale_ = (_scale_like_sklearn(self.var_, self.mean_, stats.n)
                       if self.standardize else np.ones_like(self.var_))
        gram = stats.scatter / np.outer(self.scale_, self.scale_)
        rhs = stats.cross / self.scale_
        self.intercept_ = float(stats.y_mean)
        grid = [float(a) for a in (self.alphas or [self.alpha])]
        val = None if eval_set is None else _as_eval_source(eval_set)
        if stats.rows is not None:
            return self._fit_dual(stats, grid, val, callbacks)
        if val is None or len(grid) == 1:
            # one α: a Cholesky solve, as sklearn's Ridge does (no eigenbasis needed)
            from scipy.linalg import cho_factor, cho_solve

            self.alpha_ = float(self.alpha) if len(grid) > 1 else grid[0]
            self.alpha_curve_ = []
            gram[np.diag_indices_from(gram)] += self.alpha_
            factor = cho_factor(gram, overwrite_a=True, check_finite=False)
            self.coef_ = cho_solve(factor, rhs, check_finite=False)
            return self
        lam, vecs = np.linalg.eigh(gram)
        z = vecs.T @ rhs
        self.alpha_curve_ = self._score_path(val, vecs, lam, z, grid, callbacks)
        self._choose_alpha(stats.n, callbacks)
        self.coef_ = vecs @ (z / (lam + self.alpha_))
        return self

    def _fit_dual(self, stats: RidgeStats, grid: list[float], val: ChunkSource | None,
                  callbacks: Callbacks | None) -> StreamingRidge:
        """Kernel form for n < p: with Xs the standardized centred rows and K = Xs Xsᵀ =
        U Λ Uᵀ, coef(α) = Xsᵀ U (Λ + α)⁻¹ Uᵀ y_c — the same solution as the primal
        (XsᵀXs + α)⁻¹ Xsᵀ y_c, with an n × n instead of a p × p eigensolve."""
        xs = (stats.rows - (stats.mean - stats.shift)) / self.scale_
        yc = stats.y - stats.y_mean
        lam, u = np.linalg.eigh(xs @ xs.T)
        uy = u.T @ yc
        if val is None or len(grid) == 1:
            self.alpha_ = grid[0] if len(grid) == 1 else float(self.alpha)
            self.alpha_curve_ = []
        else:
            kv = np.concatenate([self._standardize(c) @ xs.T for c in
                                 val.chunks(int(self.chunk_rows))]) @ u
            self.alpha_curve_ = self._score_path(val, kv, lam, uy, grid, callbacks,
                                                 projected=True)
            self._choose_alpha(stats.n, callbacks)
        self.coef_ = xs.T @ (u @ (uy / (lam + self.alpha_)))
        return self

    def _choose_alpha(self, n: int, callbacks: Callbacks | None) -> None:
        """α = the best validation R² of the curve. A last progress event carries the chosen
        α's validation figures: followers show each name's latest value, and the path's
        last metric event is the largest α's (R² ≈ 0), not the model's."""
        best = max(self.alpha_curve_, key=lambda r: r["val_r2"])
        self.alpha_ = best["alpha"]
        emit(callbacks, "progress", done=n, total=n, val_r2=best["val_r2"],
             val_mae=best["val_mae"], alpha=best["alpha"])

    def _score_path(self, val: ChunkSource, vecs: np.ndarray, lam: np.ndarray,
                    z: np.ndarray, grid: list[float], callbacks: Callbacks | None,
                    projected: bool = False) -> list[dict[str, float]]:
        """Validation R² and MAE (dex) of every α: project the standardized validation
        rows on the eigenbasis once (``projected``: ``vecs`` already is that projection),
        then each α is one (n_val × k) matvec."""
        y_val = val.labels().astype(np.float64)
        if projected:
            proj = vecs
        else:
            proj = [self._standardize(c) @ vecs for c in val.chunks(int(self.chunk_rows))]
            proj = np.concatenate(proj) if proj else np.zeros((0, len(lam)))
        curve = []
        for step, a in enumerate(grid):
            pred = proj @ (z / (lam + a)) + self.intercept_
            r2 = metrics.r2(y_val, pred)
            mae = metrics.mae(y_val, pred)
            curve.append({"alpha": a, "val_r2": r2, "val_mae": mae})
            emit(callbacks, "metric", step=step, name="val_r2", value=r2, split="val", alpha=a)
            emit(callbacks, "metric", step=step, name="val_mae", value=mae, split="val",
                 alpha=a)
        return curve

    # -------------------------------------------------------------- predict
    def _standardize(self, chunk: np.ndarray) -> np.ndarray:
        return (np.asarray(chunk, dtype=np.float64) - self.mean_) / self.scale_

    def predict(self, X: Any) -> np.ndarray:
        """log g (dex) for an array or a ChunkSource, computed in float64 chunks."""
        chunks = (X[i:i + self.chunk_rows] for i in range(0, len(X), self.chunk_rows)) \
            if isinstance(X, np.ndarray) else X.chunks(int(self.chunk_rows))
        out = [self._standardize(c) @ self.coef_ + self.intercept_ for c in chunks]
        return np.concatenate(out) if out else np.zeros(0)


def _scale_like_sklearn(var: np.ndarray, mean: np.ndarray, n: int) -> np.ndarray:
    """Population std with StandardScaler's rule: (near-)constant features keep scale 1."""
    eps = np.finfo(np.float64).eps
    constant = var <= n * eps * var + (n * mean * eps) ** 2
    scale = np.sqrt(var)
    scale[constant | (scale < 10 * eps)] = 1.0
    return scale


def _as_eval_source(eval_set: Any) -> ChunkSource:
    if isinstance(eval_set, tuple):
        return as_source(*eval_set)
    return as_source(eval_set)
