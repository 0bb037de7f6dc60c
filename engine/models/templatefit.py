"""The χ² template-fitting baseline (ORIGINAL_SYSTEM.md §3.5), in batched matrix form.

Likelihood: χ²(θ, A) = Σ_j w_j (x_j − A·f_j(θ))², w_j = 1/σ_j². The flux scale is
marginalised analytically: A* = Σ w x f ÷ Σ w f², so χ²_min(θ) = Σ w x² − (Σ w x f)² / Σ w f².
For a block of spectra against K templates both sums are two matrix products
((x·w) @ Tᵀ and w @ (T²)ᵀ), so the coarse search over the whole node grid is dense BLAS.

Templates come from the project's forward model (engine.generator.synth.BatchSynth) at the
nodes of a regular (T_eff, log g, [M/H]) grid with [α/M] = [C/M] = 0, cached as .npy.

Refinement (why not Nelder–Mead per spectrum as pfsspec did): one forward-model call costs
~25 ms, so per-spectrum optimisation over thousands of test spectra is too slow on a CPU.
Instead the templates are trilinearly interpolated between nodes (as pfsspec interpolates
its grid) inside the 3×3×3 node window around the best node. Interpolated templates are
linear in the 27 node templates (f = Cᵀ t), so with b = T (w x) and G = T diag(w) Tᵀ per
spectrum every sub-grid point costs only χ² = Σ w x² − (c·b)² / (cᵀ G c): exact, no extra
forward-model calls. `refine_steps` sub-divisions per node step (0 = no refinement)."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import numpy as np

CHUNK_BYTES = 256 * 2**20       # budget for one χ² block (n × K float64 + temporaries)
TEMPLATE_BATCH = 64


def axis(lo: float, hi: float, step: float) -> np.ndarray:
    """Inclusive regular axis lo, lo+step, …, ≤ hi (rounded to kill float drift)."""
    n = int(np.floor((hi - lo) / step + 1e-9)) + 1
    return np.round(lo + step * np.arange(n), 6)


def analytic_scale(x: np.ndarray, f: np.ndarray, w: np.ndarray) -> np.ndarray:
    """A* = Σ w x f / Σ w f² along the last axis (the weighted least-squares flux scale)."""
    return (w * x * f).sum(-1) / (w * f * f).sum(-1)


def chi2_grid(X: np.ndarray, W: np.ndarray, T: np.ndarray, T2: np.ndarray | None = None
              ) -> tuple[np.ndarray, np.ndarray]:
    """(χ²_min, A*) of every row of X against every template row of T: shapes (n, K)."""
    T2 = T * T if T2 is None else T2
    xw = X * W
    num = xw @ T.T                                  # Σ w x f
    den = W @ T2.T                                  # Σ w f²
    x2 = np.einsum("ij,ij->i", xw, X)[:, None]      # Σ w x²
    with np.errstate(divide="ignore", invalid="ignore"):
        scale = num / den
        chi2 = x2 - num * scale
    return np.where(den > 0, chi2, np.inf), scale


def _trilinear_weights(steps: int) -> tuple[np.ndarray, np.ndarray]:
    """Sub-grid offsets u ∈ [0, 2]³ (in node steps inside a 3-node window) and their
    (M, 27) interpolation weights over the window's nodes (C order: T_eff, log g, M_H)."""
    s = max(int(steps), 1)
    u = np.arange(2 * s + 1) / s
    w1 = np.maximum(0.0, 1.0 - np.abs(u[:, None] - np.arange(3)[None, :]))  # (2s+1, 3)
    C = np.einsum("ai,bj,ck->abcijk", w1, w1, w1).reshape(len(u) ** 3, 27)
    U = np.stack(np.meshgrid(u, u, u, indexing="ij"), -1).reshape(-1, 3)
    return U, C


def _weights(X: np.ndarray, error: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """float64 (x, w = 1/σ²); pixels with a non-finite or non-positive σ or a non-finite
    flux get weight 0 (pfsspec masks NaNs the same way)."""
    X, error = np.asarray(X, np.float64), np.asarray(error, np.float64)
    ok = np.isfinite(X) & np.isfinite(error) & (error > 0)
    W = np.where(ok, 1.0 / np.where(ok, error, 1.0) ** 2, 0.0)
    return np.where(ok, X, 0.0), W


class TemplateFit:
    """sklearn-style χ² template fitter. `fit()` builds (or loads) the node templates;
    `predict(X, error)` returns log g (dex) and keeps `teff_pred_`, `mh_pred_`,
    `logg_pred_`, `scale_pred_`, `chi2_pred_` for the last call."""

    def __init__(self, teff: tuple[float, float, float] = (3750.0, 6000.0, 250.0),
                 logg: tuple[float, float, float] = (1.0, 5.0, 0.5),
                 mh: tuple[float, float, float] = (-2.5, 0.75, 0.25),
                 refine_steps: int = 4, cache_dir: str | Path | None = None,
                 synth_batch: int = TEMPLATE_BATCH, chunk_bytes: int = CHUNK_BYTES) -> None:
        self.teff = teff
        self.logg = logg
        self.mh = mh
        self.refine_steps = refine_steps
        self.cache_dir = cache_dir
        self.synth_batch = synth_batch
        self.chunk_bytes = chunk_bytes

    # -- templates --------------------------------------------------------------------
    def _axes(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return axis(*self.teff), axis(*self.logg), axis(*self.mh)

    def cache_key(self) -> str:
        """Hash of the grid and the generator's source, so a changed forward model never
        reuses stale templates."""
        h = hashlib.sha256()
        for a in self._axes():
            h.update(np.asarray(a, np.float64).tobytes())
        gen = Path(__file__).resolve().parent.parent / "generator"
        for p in sorted(gen.rglob("*")):
            if p.is_file() and p.suffix in (".py", ".json", ".csv", ".txt", ".npy", ".npz"):
                h.update(p.name.encode())
                h.update(p.read_bytes())
        return h.hexdigest()[:16]

    def fit(self, X: Any = None, y: Any = None, callbacks: Any = ()) -> "TemplateFit":
        """Build the node templates (nothing is learned from X, y: a physics baseline)."""
        t_ax, g_ax, m_ax = self._axes()
        if min(len(t_ax), len(g_ax), len(m_ax)) < 3:
            raise ValueError("each template-grid axis needs at least 3 nodes")
        path = None
        if self.cache_dir is not None:
            path = Path(self.cache_dir) / f"templatefit_{self.cache_key()}.npy"
        self.templates_ = self._load_or_build(path, t_ax, g_ax, m_ax, callbacks)
        self.teff_axis_, self.logg_axis_, self.mh_axis_ = t_ax, g_ax, m_ax
        self.n_templates_ = len(self.templates_)
        self.n_features_in_ = self.templates_.shape[1]
        return self

    def _load_or_build(self, path: Path | None, t_ax, g_ax, m_ax, callbacks) -> np.ndarray:
        shape = (len(t_ax) * len(g_ax) * len(m_ax),)
        if path is not None and path.exists():
            try:
                arr = np.load(path)
                if arr.shape[0] == shape[0] and arr.dtype == np.float32:
                    return arr
            except (OSError, ValueError):
                pass  # damaged cache: rebuild below
        from engine.events import emit
        from engine.generator.synth import BatchSynth

        theta = self.node_theta(t_ax, g_ax, m_ax)
        synth = BatchSynth(batch=self.synth_batch)
        parts = []
        for s in range(0, len(theta), 8 * self.synth_batch):
            parts.append(synth(theta[s:s + 8 * self.synth_batch]))
            emit(callbacks, "progress", stage="templates", done=min(s + 8 * self.synth_batch,
                 len(theta)), total=len(theta))
        arr = np.concatenate(parts).astype(np.float32)
        if path is not None:
            from engine.atomic import save_npy

            save_npy(path, arr)
        return arr

    @staticmethod
    def node_theta(t_ax, g_ax, m_ax) -> np.ndarray:
        """(K, 5) θ of the nodes in C order (T_eff slowest, [M/H] fastest), α = C = 0."""
        T, G, M = np.meshgrid(t_ax, g_ax, m_ax, indexing="ij")
        z = np.zeros(T.size)
        return np.stack([T.ravel(), G.ravel(), M.ravel(), z, z], 1).astype(np.float32)

    # -- prediction -------------------------------------------------------------------
    def predict(self, X: np.ndarray, error: np.ndarray) -> np.ndarray:
        """Best-fit log g (dex) per row of X given its 1σ `error` (same shape)."""
        if not hasattr(self, "templates_"):
            raise ValueError("TemplateFit is not fitted; call fit() first")
        X, error = np.asarray(X), np.asarray(error)
        if X.shape != error.shape or X.ndim != 2 or X.shape[1] != self.n_features_in_:
            raise ValueError(f"X {X.shape} and error {error.shape} must both be "
                             f"(n, {self.n_features_in_})")
        T = self.templates_.astype(np.float64)
        T2 = T * T
        n, (K, P) = len(X), T.shape
        rows = max(1, int(self.chunk_bytes // (8 * (3 * K + 4 * P))))
        ref_rows = max(1, int(self.chunk_bytes // (8 * 2 * 27 * P)))
        out = {k: np.empty(n) for k in ("teff", "logg", "mh", "scale", "chi2")}
        for s in range(0, n, rows):
            sl = slice(s, min(s + rows, n))
            x, w = _weights(X[sl], error[sl])
            chi2, scale = chi2_grid(x, w, T, T2)
            best = np.argmin(chi2, axis=1)
            if not self.refine_steps:
                for k, v in self._node_result(best, chi2, scale).items():
                    out[k][sl] = v
                continue
            for r in range(0, len(x), ref_rows):
                rs = slice(r, r + ref_rows)
                for k, v in self._refine(x[rs], w[rs], T, best[rs]).items():
                    out[k][s + r:s + r + len(v)] = v
        self.teff_pred_, self.logg_pred_, self.mh_pred_ = out["teff"], out["logg"], out["mh"]
        self.scale_pred_, self.chi2_pred_ = out["scale"], out["chi2"]
        return out["logg"].copy()

    def _shape(self) -> tuple[int, int, int]:
        return len(self.teff_axis_), len(self.logg_axis_), len(self.mh_axis_)

    def _node_result(self, best, chi2, scale) -> dict[str, np.ndarray]:
        i, j, k = np.unravel_index(best, self._shape())
        r = np.arange(len(best))
        return {"teff": self.teff_axis_[i], "logg": self.logg_axis_[j],
                "mh": self.mh_axis_[k], "scale": scale[r, best], "chi2": chi2[r, best]}

    def _refine(self, X, W, T, best) -> dict[str, np.ndarray]:
        """Exact χ² on a trilinear sub-grid of the 3×3×3 node window around each best node
        (module docstring): b = T_win (w x), G = T_win diag(w) T_winᵀ per spectrum."""
        U, C = _trilinear_weights(self.refine_steps)
        dims = self._shape()
        idx = np.stack(np.unravel_index(best, dims), 1)                       # (n, 3)
        start = np.clip(idx - 1, 0, np.array(dims) - 3)                       # window origin
        off = np.stack(np.meshgrid(*[np.arange(3)] * 3, indexing="ij"), -1).reshape(27, 3)
        win = np.ravel_multi_index(tuple((start[:, None, :] + off[None]).transpose(2, 0, 1)),
                                   dims)                                      # (n, 27)
        Tw = T[win]                                                           # (n, 27, P)
        b = np.einsum("nkp,np->nk", Tw, X * W)
        G = (Tw * W[:, None, :]) @ Tw.transpose(0, 2, 1)
        x2 = np.einsum("np,np->n", X * W, X)
        num = b @ C.T                                                         # (n, M)
        den = np.einsum("mk,nkl,ml->nm", C, G, C)
        chi2 = x2[:, None] - num * num / den
        m = np.argmin(chi2, axis=1)
        r = np.arange(len(X))
        steps = np.array([self.teff[2], self.logg[2], self.mh[2]], np.float64)
        origin = np.stack([self.teff_axis_[start[:, 0]], self.logg_axis_[start[:, 1]],
                           self.mh_axis_[start[:, 2]]], 1)
        theta = origin + U[m] * steps
        return {"teff": theta[:, 0], "logg": theta[:, 1], "mh": theta[:, 2],
                "scale": num[r, m] / den[r, m], "chi2": chi2[r, m]}
