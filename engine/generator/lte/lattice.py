"""The pfsspec way to make many spectra cheaply (issue 11 item 5, GENERATOR.md decision 4):
synthesise each BOSZ-like node (T_eff 250 K, log g 0.5, [M/H], [α/M], [C/M] 0.25) once and
interpolate along the one free axis of a snapped draw (`priors.sample_labels(snap=True)`).

Why: the depth-resolved synthesis costs several times v1's per spectrum; a snapped preset
(`bosz-1m`) needs at most the 30,240 nodes of the box however many rows it draws, so its
cost stops growing with the row count. Interpolation is a Catmull–Rom cubic through the
four nearest nodes of the free axis (C¹, exact at nodes; one-sided at the box edges), as
pfsspec interpolates along one axis with a spline; it acts on the normalised node spectra,
then the result is renormalised to median 0.5 (interpolation commutes with LSF and rebin,
not with the median, hence the renormalisation). Rows whose labels all sit on nodes are
the node spectra themselves. The CRLB columns are still computed from the exact model at
θ (fisher.py), not from the interpolant."""

from __future__ import annotations

import numpy as np

from engine.generator.priors import BOX, GRID_STEP
from engine.generator.lte.synth import PARAMS

LO = np.array([BOX[p][0] for p in PARAMS])
STEP = np.array([GRID_STEP[p] for p in PARAMS])
N_NODES = np.round((np.array([BOX[p][1] for p in PARAMS]) - LO) / STEP).astype(int) + 1


def node_index(theta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(continuous node coordinate u (n, 5), on-node mask (n, 5))."""
    u = (np.asarray(theta, np.float64) - LO) / STEP
    return u, np.isclose(u, np.round(u), atol=1e-6)


def catmull_rom(t: np.ndarray) -> np.ndarray:
    """Weights (n, 4) of nodes i−1, i, i+1, i+2 at fraction t ∈ [0, 1) between i and i+1."""
    t2, t3 = t * t, t * t * t
    return 0.5 * np.stack([-t3 + 2 * t2 - t, 3 * t3 - 5 * t2 + 2, -3 * t3 + 4 * t2 + t, t3 - t2], 1)


class LatticeSynth:
    """Same call as BatchSynth (θ (N, 5) → float32 flux (N, 4096)) for snapped draws, with
    an in-memory node cache shared by every call of one build."""

    def __init__(self, synth) -> None:
        self.synth = synth
        self.cache: dict[tuple[int, ...], np.ndarray] = {}
        self.nodes_synthesised = 0

    def _nodes(self, keys: list[tuple[int, ...]]) -> None:
        todo = sorted({k for k in keys if k not in self.cache})
        if not todo:
            return
        theta = LO + STEP * np.array(todo, np.float64)
        flux = self.synth(theta)
        for k, f in zip(todo, flux):
            self.cache[k] = f
        self.nodes_synthesised += len(todo)

    def plan(self, theta: np.ndarray):
        """Per row: the four node keys along the free axis and their weights."""
        u, on = node_index(theta)
        n = len(u)
        if ((~on).sum(1) > 1).any():
            raise ValueError("LatticeSynth needs draws with at most one off-node label "
                             "(priors.sample_labels(snap=True))")
        free = np.where((~on).any(1), np.argmax(~on, 1), 0)
        base = np.round(u).astype(int)
        i0 = np.floor(u[np.arange(n), free]).astype(int)
        t = u[np.arange(n), free] - i0
        weights = np.where((~on).any(1)[:, None], catmull_rom(t), np.array([0.0, 1.0, 0.0, 0.0]))
        keys = []
        for r in range(n):
            row = []
            for _j, off in enumerate((-1, 0, 1, 2)):
                k = base[r].copy()
                k[free[r]] = int(np.clip(i0[r] + off, 0, N_NODES[free[r]] - 1))
                row.append(tuple(int(x) for x in k))
            keys.append(row)
        return keys, weights

    def __call__(self, theta: np.ndarray) -> np.ndarray:
        keys, w = self.plan(theta)
        self._nodes([k for row in keys for k in row])
        out = np.empty((len(keys), self.synth_pixels()), np.float32)
        for r, row in enumerate(keys):
            f = sum(w[r, j] * self.cache[k].astype(np.float64) for j, k in enumerate(row))
            out[r] = f * (0.5 / np.median(f))
        return out

    def synth_pixels(self) -> int:
        from engine.generator.lte import grids
        return grids.N_PIXELS
