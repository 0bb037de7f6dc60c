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
the node spectra themselves. The CRLB columns come from the exact model at θ (fisher.py) or,
with `--crlb-method lattice`, from the interpolant itself (lattice_fisher.py).

The node spectra live in a `node_store.NodeLattice` (persistent under
`<workspace>/cache/lattice/<key>/` when the builder passes one, in memory otherwise), all in
one (n_nodes, 4096) float32 array; a call plans every row at once (numpy) and interpolates
blocks of rows with one gather and one einsum, so interpolation costs microseconds per row."""

from __future__ import annotations

import numpy as np

from engine.generator.lte.node_store import LO, N_NODES, STEP, NodeLattice, flat_index

BLOCK_ROWS = 512          # rows per gather/einsum block: (512, 4, 4096) float32 = 32 MB
_N = np.array(N_NODES)


def node_index(theta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(continuous node coordinate u (n, 5), on-node mask (n, 5))."""
    u = (np.asarray(theta, np.float64) - LO) / STEP
    return u, np.isclose(u, np.round(u), atol=1e-6)


def catmull_rom(t: np.ndarray) -> np.ndarray:
    """Weights (n, 4) of nodes i−1, i, i+1, i+2 at fraction t ∈ [0, 1) between i and i+1."""
    t2, t3 = t * t, t * t * t
    return 0.5 * np.stack([-t3 + 2 * t2 - t, 3 * t3 - 5 * t2 + 2, -3 * t3 + 4 * t2 + t, t3 - t2], 1)


def plan(theta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per row the flat numbers (n, 4) of the four nodes along its free axis (clipped at
    the box edges) and their Catmull–Rom weights (n, 4); an on-node row gets its own node
    with weight 1 in the second slot."""
    u, on = node_index(theta)
    n = len(u)
    off = ~on
    if (off.sum(1) > 1).any():
        raise ValueError("LatticeSynth needs draws with at most one off-node label "
                         "(priors.sample_labels(snap=True))")
    if ((u < -1e-6) | (u > _N - 1 + 1e-6)).any():
        raise ValueError("LatticeSynth: θ outside the prior box (engine.generator.priors.BOX)")
    has_free = off.any(1)
    free = np.where(has_free, np.argmax(off, 1), 0)
    base = np.clip(np.round(u).astype(np.int64), 0, _N - 1)
    r = np.arange(n)
    uf = u[r, free]
    i0 = np.where(has_free, np.floor(uf), base[r, free]).astype(np.int64)
    t = np.where(has_free, uf - i0, 0.0)
    weights = np.where(has_free[:, None], catmull_rom(t), np.array([0.0, 1.0, 0.0, 0.0]))
    keys = np.repeat(base[:, None, :], 4, 1)                          # (n, 4, 5)
    along = np.clip(i0[:, None] + np.arange(-1, 3)[None, :], 0, _N[free][:, None] - 1)
    keys[r[:, None], np.arange(4)[None, :], free[:, None]] = along
    return flat_index(keys), weights


def interpolate(flux: np.ndarray, rows: np.ndarray, weights: np.ndarray,
                block: int = BLOCK_ROWS, dtype=np.float32) -> np.ndarray:
    """Σ_k w_k · flux[rows_k] in float64 per row, renormalised to median 0.5; float32 out
    (`dtype`: float64 for the lattice Jacobian's differences, lattice_fisher.py).
    Blocks of rows keep the gathered (block, 4, n_pix) array small."""
    out = np.empty((len(rows), flux.shape[1]), dtype)
    for s in range(0, len(rows), block):
        f = np.einsum("bk,bkp->bp", weights[s:s + block],
                      flux[rows[s:s + block]].astype(np.float64))
        out[s:s + block] = f * (0.5 / np.median(f, axis=1))[:, None]
    return out


class LatticeSynth:
    """Same call as BatchSynth (θ (N, 5) → float32 flux (N, 4096)) for snapped draws.
    `lattice`: a NodeLattice (the builder passes the workspace's persistent one); default
    an in-memory lattice for this object's lifetime."""

    def __init__(self, synth, lattice: NodeLattice | None = None) -> None:
        self.synth = synth
        self.lattice = lattice if lattice is not None else NodeLattice(None)

    @property
    def nodes_synthesised(self) -> int:
        return self.lattice.synthesised

    def plan(self, theta: np.ndarray):
        return plan(theta)

    def prepare(self, theta: np.ndarray, callbacks=None, extra: np.ndarray | None = None
                ) -> int:
        """Synthesise (and store) every node the rows θ need (and the flat node numbers
        `extra`: the lattice CRLB's grid neighbours), with progress events; the builder
        calls it once for a whole build before writing any row."""
        keys, _ = plan(theta)
        if extra is not None:
            keys = np.concatenate([keys.ravel(), np.asarray(extra, np.int64).ravel()])
        return self.lattice.ensure(keys, self.synth, callbacks)

    def __call__(self, theta: np.ndarray) -> np.ndarray:
        keys, w = plan(theta)
        self.lattice.ensure(keys, self.synth)
        return interpolate(self.lattice.flux, self.lattice.rows(keys), w)
