"""The χ² template-fitting baseline (docs/analyses.md), in batched matrix form.

Likelihood: χ²(θ, A) = Σ_j w_j (x_j − A·f_j(θ))², w_j = 1/σ_j². The flux scale is
marginalised analytically: A* = Σ w x f ÷ Σ w f², so χ²_min(θ) = Σ w x² − (Σ w x f)² / Σ w f².
For a block of spectra against K templates both sums are two matrix products
((x·w) @ Tᵀ and w @ (T²)ᵀ), so the coarse search over the whole node grid is dense BLAS.

θ = (T_eff, log g, [M/H], [α/M], [C/M]): all five labels the generator varies. Templates come
from the project's forward model of the data's own physics (`physics`: the v1 `me` model,
engine.generator.synth.BatchSynth, or v2 `lte`) at the nodes of a regular 5-D grid, cached
as .npy. Why all five: with [α/M] = [C/M] = 0 fixed (the first
version) the abundance mismatch is absorbed by log g, which biases it even on noiseless
spectra (R² 0.62 clean, 0.07 noisy on the demo set). An axis given as a single node
(e.g. (0, 0, 1)) stays fixed, which reproduces that 3-D fit.

Refinement (why not Nelder–Mead or Gauss–Newton on the generator per spectrum as pfsspec
did): one forward-model call costs ~25 ms and its Jacobian ~1 s, so per-spectrum
optimisation over thousands of test spectra is too slow on a CPU. Instead the model is the
tensor-product quadratic Lagrange interpolant of the templates inside the 3⁵-node window
around the best node (≈4× smaller interpolation error than multilinear at these steps).
An interpolated template is linear in the window's node templates, f(u) = c(u)ᵀ T_win,
so with b = T_win (w x) and G = T_win diag(w) T_winᵀ per spectrum χ²(u) = Σ w x² −
(c·b)² / (cᵀ G c) is exact for that model and needs no forward-model call. c(u) is a
Kronecker product of per-axis weight vectors, so c·b and cᵀGc for a whole 3⁵ candidate
stencil are computed axis by axis (cheap). The continuous position u is found by a
pattern search: the full 3⁵ stencil of ±h around the current point, h halved per level
(0.5, 0.25, … node steps; `refine_levels` levels, 0 = keep the best node). A move is only
taken when it lowers χ², so the fitted χ² never exceeds the best node's."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import numpy as np

from engine.generator.priors import BOX

CHUNK_BYTES = 256 * 2**20       # budget for one χ² block (float64 arrays + temporaries)
TEMPLATE_BATCH = 64
LABELS = ("teff", "logg", "mh", "am", "cm")           # estimator attribute names, θ order
MOVES_PER_LEVEL = 2                                   # pattern-search moves per step size


def axis(lo: float, hi: float, step: float) -> np.ndarray:
    """Inclusive regular axis lo, lo+step, …, ≤ hi (rounded to kill float drift)."""
    n = int(np.floor((hi - lo) / step + 1e-9)) + 1
    return np.round(lo + step * np.arange(n), 6)


def prior_axis(label: str, nodes: int = 3) -> tuple[float, float, float]:
    """(lo, hi, step) spanning the generator's prior box for a PARAMS label with `nodes`
    nodes: the default [α/M], [C/M] axes follow the data instead of hard-coded numbers."""
    lo, hi = BOX[label]
    return (float(lo), float(hi), float(hi - lo) / (nodes - 1))


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


def lagrange(u: np.ndarray, size: int) -> np.ndarray:
    """Lagrange weights of the nodes 0..size−1 (size 1, 2 or 3) at positions u:
    shape u.shape + (size,). Quadratic for 3 nodes: exact at the nodes, smooth between."""
    u = np.asarray(u, np.float64)[..., None]
    if size == 1:
        return np.ones_like(u)
    if size == 2:
        return np.concatenate([1.0 - u, u], -1)
    return np.concatenate([(u - 1) * (u - 2) / 2, -u * (u - 2), u * (u - 1) / 2], -1)


def stencil_project(b: np.ndarray, Ws: list[np.ndarray]) -> np.ndarray:
    """c·b for every candidate of a Kronecker stencil. b: (n, s_1·…·s_D) window vector;
    Ws[d]: (n, m_d, s_d) per-axis weights. Returns (n, m_1·…·m_D), C order."""
    n, A = len(b), 1
    out = b
    for W in Ws:
        m, s = W.shape[1:]
        out = np.einsum("nmk,nakb->namb", W, out.reshape(n, A, s, -1))
        A *= m
    return out.reshape(n, A)


def stencil_quad(G: np.ndarray, Ws: list[np.ndarray]) -> np.ndarray:
    """cᵀ G c for every candidate of a Kronecker stencil (the diagonal of C G Cᵀ only),
    one axis at a time: G's row and column index of axis d collapse into the candidate
    index m_d. G: (n, S, S) with S = Π s_d. Returns (n, Π m_d), C order."""
    n, D = len(G), len(Ws)
    sizes = [W.shape[2] for W in Ws]
    g = G.reshape(n, *sizes, *sizes)
    g = g.transpose(0, *[a for d in range(D) for a in (1 + d, 1 + D + d)])  # interleave
    A = 1
    for W, s in zip(Ws, sizes):
        g = np.einsum("nmk,nml,naklb->namb", W, W, g.reshape(n, A, s, s, -1))
        A *= W.shape[1]
    return g.reshape(n, A)


def _weights(X: np.ndarray, error: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """float64 (x, w = 1/σ²); pixels with a non-finite or non-positive σ or a non-finite
    flux get weight 0 (pfsspec masks NaNs the same way)."""
    X, error = np.asarray(X, np.float64), np.asarray(error, np.float64)
    ok = np.isfinite(X) & np.isfinite(error) & (error > 0)
    W = np.where(ok, 1.0 / np.where(ok, error, 1.0) ** 2, 0.0)
    return np.where(ok, X, 0.0), W


class TemplateFit:
    """sklearn-style χ² template fitter over (T_eff, log g, [M/H], [α/M], [C/M]).
    `fit()` builds (or loads) the node templates; `predict(X, error)` returns log g (dex)
    and keeps `teff_pred_`, `logg_pred_`, `mh_pred_`, `am_pred_`, `cm_pred_`,
    `scale_pred_`, `chi2_pred_` (fitted point) and `node_chi2_pred_` (best node) for the
    last call. Each axis is (lo, hi, step); the defaults are the BOSZ steps for the first
    three and 3 nodes across the generator's prior box for [α/M] and [C/M]."""

    def __init__(self, teff: tuple[float, float, float] = (3750.0, 6000.0, 250.0),
                 logg: tuple[float, float, float] = (1.0, 5.0, 0.5),
                 mh: tuple[float, float, float] = (-2.5, 0.75, 0.25),
                 am: tuple[float, float, float] = prior_axis("a_M"),
                 cm: tuple[float, float, float] = prior_axis("C_M"),
                 refine_levels: int = 4, cache_dir: str | Path | None = None,
                 synth_batch: int = TEMPLATE_BATCH, chunk_bytes: int = CHUNK_BYTES,
                 physics: str = "me") -> None:
        self.teff = teff
        self.logg = logg
        self.mh = mh
        self.am = am
        self.cm = cm
        self.refine_levels = refine_levels
        self.cache_dir = cache_dir
        self.synth_batch = synth_batch
        self.chunk_bytes = chunk_bytes
        self.physics = physics      # the generator physics of the data (engine.generator.physics)

    # -- templates --------------------------------------------------------------------
    def _axes(self) -> list[np.ndarray]:
        return [axis(*getattr(self, k)) for k in LABELS]

    def cache_key(self) -> str:
        """Hash of the grid and the generator's source, so a changed forward model never
        reuses stale templates."""
        h = hashlib.sha256(b"5d")
        if self.physics != "me":          # v1 keys stay what they were
            h.update(f"physics={self.physics}|".encode())
        for a in self._axes():
            h.update(np.asarray(a, np.float64).tobytes() + b"|")
        gen = Path(__file__).resolve().parent.parent / "generator"
        for p in sorted(gen.rglob("*")):
            if p.is_file() and p.suffix in (".py", ".json", ".csv", ".txt", ".npy", ".npz"):
                h.update(p.name.encode())
                h.update(p.read_bytes())
        return h.hexdigest()[:16]

    def fit(self, X: Any = None, y: Any = None, callbacks: Any = ()) -> TemplateFit:
        """Build the node templates (nothing is learned from X, y: a physics baseline)."""
        axes = self._axes()
        for name, a in zip(LABELS, axes):
            if len(a) < 1:
                raise ValueError(f"template-grid axis {name!r} has no nodes")
        if len(axes[1]) < 2:
            raise ValueError("the log g axis needs at least 2 nodes")
        path = None
        if self.cache_dir is not None:
            path = Path(self.cache_dir) / f"templatefit_{self.cache_key()}.npy"
        self.templates_ = self._load_or_build(path, axes, callbacks)
        self.axes_ = axes
        self.teff_axis_, self.logg_axis_, self.mh_axis_, self.am_axis_, self.cm_axis_ = axes
        self.n_templates_ = len(self.templates_)
        self.n_features_in_ = self.templates_.shape[1]
        return self

    def _load_or_build(self, path: Path | None, axes, callbacks) -> np.ndarray:
        n = int(np.prod([len(a) for a in axes]))
        if path is not None and path.exists():
            try:
                arr = np.load(path)
                if arr.shape[0] == n and arr.dtype == np.float32:
                    return arr
            except (OSError, ValueError):
                pass  # damaged cache: rebuild below
        from engine.events import emit
        from engine.generator.physics import synth_module

        theta = self.node_theta(*axes)
        # the data's own forward model; v2 (lte) is ~10× slower eager, so it is compiled
        synth = synth_module(self.physics).BatchSynth(batch=self.synth_batch,
                                                      compile=self.physics != "me")
        parts, step = [], 8 * self.synth_batch
        for s in range(0, len(theta), step):
            parts.append(synth(theta[s:s + step]))
            emit(callbacks, "progress", stage="templates", done=min(s + step, len(theta)),
                 total=len(theta))
        arr = np.concatenate(parts).astype(np.float32)
        if path is not None:
            from engine.atomic import save_npy

            save_npy(path, arr)
        return arr

    @staticmethod
    def node_theta(*axes: np.ndarray) -> np.ndarray:
        """(K, 5) θ of the nodes in C order (T_eff slowest, [C/M] fastest). Given only
        three axes (the old call), [α/M] = [C/M] = 0."""
        axes = list(axes) + [np.zeros(1)] * (5 - len(axes))
        grid = np.meshgrid(*axes, indexing="ij")
        return np.stack([g.ravel() for g in grid], 1).astype(np.float32)

    # -- prediction -------------------------------------------------------------------
    def predict(self, X: np.ndarray, error: np.ndarray) -> np.ndarray:
        """Best-fit log g (dex) per row of X given its 1σ `error` (same shape)."""
        if not hasattr(self, "templates_"):
            raise ValueError("TemplateFit is not fitted; call fit() first")
        X, error = np.asarray(X), np.asarray(error)
        if X.shape != error.shape or X.ndim != 2 or X.shape[1] != self.n_features_in_:
            raise ValueError(f"X {X.shape} and error {error.shape} must both be "
                             f"(n, {self.n_features_in_})")
        K, P = self.templates_.shape
        kb = max(1, min(K, int(self.chunk_bytes // (8 * 4 * P))))        # templates/block
        rows = max(1, int(self.chunk_bytes // (8 * (4 * kb + 4 * P))))   # spectra/block
        S = int(np.prod(self._window()))
        ref_rows = max(1, int(self.chunk_bytes // (8 * (2 * S * P + S * S * 4))))
        names = LABELS + ("scale", "chi2", "node_chi2")
        out = {k: np.empty(len(X)) for k in names}
        for s in range(0, len(X), rows):
            x, w = _weights(X[s:s + rows], error[s:s + rows])
            best, node_chi2 = self._coarse(x, w, kb)
            for r in range(0, len(x), ref_rows):
                rs = slice(r, r + ref_rows)
                res = self._refine(x[rs], w[rs], best[rs])
                res["node_chi2"] = node_chi2[rs]
                for k, v in res.items():
                    out[k][s + r:s + r + len(v)] = v
        for k in names:
            setattr(self, f"{k}_pred_", out[k])
        return out["logg"].copy()

    def _coarse(self, x: np.ndarray, w: np.ndarray, kb: int) -> tuple[np.ndarray, np.ndarray]:
        """Best node index and its χ² per spectrum, templates taken kb at a time (float64
        per block, so the whole grid is never held in float64)."""
        best = np.zeros(len(x), np.int64)
        low = np.full(len(x), np.inf)
        r = np.arange(len(x))
        for k in range(0, len(self.templates_), kb):
            T = self.templates_[k:k + kb].astype(np.float64)
            chi2, _ = chi2_grid(x, w, T)
            j = np.argmin(chi2, axis=1)
            better = chi2[r, j] < low
            best = np.where(better, k + j, best)
            low = np.where(better, chi2[r, j], low)
        return best, low

    def _shape(self) -> tuple[int, ...]:
        return tuple(len(a) for a in self.axes_)

    def _window(self) -> tuple[int, ...]:
        return tuple(min(3, n) for n in self._shape())

    def _refine(self, X, W, best) -> dict[str, np.ndarray]:
        """Pattern search of the interpolated χ² inside the window around each best node
        (module docstring): b = T_win (w x), G = T_win diag(w) T_winᵀ per spectrum."""
        dims, win = np.array(self._shape()), np.array(self._window())
        D, n = len(dims), len(X)
        idx = np.stack(np.unravel_index(best, tuple(dims)), 1)                  # (n, D)
        start = np.clip(idx - 1, 0, dims - win)                                 # origin
        off = np.stack(np.meshgrid(*[np.arange(s) for s in win], indexing="ij"),
                       -1).reshape(-1, D)
        nodes = np.ravel_multi_index(tuple((start[:, None, :] + off[None]).transpose(2, 0, 1)),
                                     tuple(dims))                               # (n, S)
        Tw = self.templates_[nodes].astype(np.float64)                          # (n, S, P)
        xw = X * W
        b = np.einsum("nkp,np->nk", Tw, xw)
        G = (Tw * W[:, None, :]) @ Tw.transpose(0, 2, 1)
        del Tw
        x2 = np.einsum("np,np->n", xw, X)

        def chi2_at(cand: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
            """cand[d] (n, m_d): per-axis candidate positions → (χ², A*) of the stencil."""
            Ws = [lagrange(c, int(s)) for c, s in zip(cand, win)]
            num, den = stencil_project(b, Ws), stencil_quad(G, Ws)
            with np.errstate(divide="ignore", invalid="ignore"):
                scale = num / den
                chi2 = np.where(den > 0, x2[:, None] - num * scale, np.inf)
            return chi2, scale

        u = (idx - start).astype(np.float64)                                    # (n, D)
        chi2, scale = chi2_at([u[:, d:d + 1] for d in range(D)])
        chi2, scale = chi2[:, 0], scale[:, 0]
        free = [d for d in range(D) if win[d] > 1]       # fixed axes get one candidate
        shape = tuple(3 if win[d] > 1 else 1 for d in range(D))
        r = np.arange(n)
        for level in range(int(self.refine_levels)):
            h = 0.5 ** (level + 1) * np.array([-1.0, 0.0, 1.0])
            for _ in range(MOVES_PER_LEVEL):
                cand = [np.clip(u[:, d:d + 1] + h, 0.0, win[d] - 1) if d in free
                        else u[:, d:d + 1] for d in range(D)]
                c2, sc = chi2_at(cand)
                j = np.argmin(c2, axis=1)
                better = c2[r, j] < chi2
                pick = np.unravel_index(j, shape)
                new_u = np.stack([cand[d][r, pick[d]] for d in range(D)], 1)
                u = np.where(better[:, None], new_u, u)
                chi2 = np.where(better, c2[r, j], chi2)
                scale = np.where(better, sc[r, j], scale)
        steps = np.array([getattr(self, k)[2] for k in LABELS], np.float64)
        origin = np.stack([a[start[:, d]] for d, a in enumerate(self.axes_)], 1)
        theta = origin + u * steps
        res = {k: theta[:, d] for d, k in enumerate(LABELS)}
        res.update(scale=scale, chi2=chi2)
        return res
