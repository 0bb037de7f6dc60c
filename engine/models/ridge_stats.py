"""The sufficient statistics of a streamed Ridge fit: one pass over the chunks of (X, y).

Why a module of its own: StreamingRidge needs them for one model, and the MoE analyses need
them for many models at once. A Ridge fit depends on its rows only through n, the mean, the
centred Gram matrix and the centred cross-product, and those are sums: the rows of several
disjoint groups can be accumulated in ONE pass, each group into its own sums, and the sums of
all rows are the groups' sums added. So the global model and one expert per bin cost one
read of the training set, not one read per model (engine.analysis.moe.experts).

Precision: every sum is taken about one fixed shift K (the first chunk's mean, shared by all
groups), in float64, and the shift is removed exactly once at the end, as before."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from engine.events import Callbacks, emit
from engine.models.base import ChunkSource, TrainingCancelled


@dataclass
class RidgeStats:
    """Centred sufficient statistics of (X, y) after one pass. `rows`: the shifted rows
    (x − shift), kept only when the fit will solve in the dual (fewer rows than features)."""

    n: int
    mean: np.ndarray
    scatter: np.ndarray
    cross: np.ndarray
    y_mean: float
    shift: np.ndarray
    rows: np.ndarray | None
    y: np.ndarray


class _ShiftedSums:
    """Σ(x−K), the upper triangle of Σ(x−K)(x−K)ᵀ (one SYRK per block), Σ(x−K)(y−k) and
    Σ(y−k) of the rows added so far, about a shift (K, k) fixed by the caller."""

    def __init__(self, p: int, keep_rows: bool = False) -> None:
        self.n = 0
        self.scatter = np.zeros((p, p), order="F")
        self.s1 = np.zeros(p)
        self.cross = np.zeros(p)
        self.sy = 0.0
        self.kept: list[np.ndarray] | None = [] if keep_rows else None

    def add(self, x: np.ndarray, yd: np.ndarray) -> None:
        """Rows x (float64, already shifted) with shifted labels yd."""
        from scipy.linalg.blas import dsyrk

        if len(x) == 0:
            return
        self.scatter = dsyrk(1.0, x.T, beta=1.0, c=self.scatter, trans=0, lower=0,
                             overwrite_c=1)
        self.s1 += x.sum(axis=0)
        self.cross += x.T @ yd
        self.sy += float(yd.sum())
        self.n += len(x)
        if self.kept is not None:
            self.kept.append(x)

    def add_sums(self, other: _ShiftedSums) -> None:
        """Add another accumulator's sums (same shift): the sums of both row sets."""
        self.scatter += other.scatter
        self.s1 += other.s1
        self.cross += other.cross
        self.sy += other.sy
        self.n += other.n

    def finish(self, shift: np.ndarray, y_shift: float, y: np.ndarray,
               rows: np.ndarray | None = None) -> RidgeStats:
        """Centre the sums (in place: the accumulator is spent) into RidgeStats."""
        n = self.n
        if n == 0:
            raise ValueError("no training rows")
        scatter = self.scatter
        diag = np.diag(scatter).copy()
        scatter += scatter.T  # SYRK filled the upper triangle only; the lower is still 0
        scatter[np.diag_indices_from(scatter)] = diag
        dm, dy = self.s1 / n, self.sy / n
        scatter -= n * np.outer(dm, dm)
        self.cross -= n * dm * dy
        if rows is None and self.kept is not None:
            rows = np.concatenate(self.kept)
        return RidgeStats(n, shift + dm, scatter, self.cross, y_shift + dy, shift, rows, y)


def _chunks(source: ChunkSource, chunk_rows: int, callbacks: Callbacks | None,
            should_stop: Callable[[], bool] | None):
    """(start, float64 copy of the chunk) with start/progress events and cancellation."""
    emit(callbacks, "start", total=int(source.n_rows), unit="rows", what="ridge XᵀX")
    n = 0
    for chunk in source.chunks(chunk_rows):
        if should_stop is not None and should_stop():
            raise TrainingCancelled("ridge: stopped while accumulating")
        x = np.array(chunk, dtype=np.float64)  # a copy: the shift is subtracted in place
        yield n, x
        n += len(x)
        emit(callbacks, "progress", done=n, total=int(source.n_rows))


def accumulate(source: ChunkSource, chunk_rows: int, callbacks: Callbacks | None = None,
               should_stop: Callable[[], bool] | None = None,
               keep_rows: bool = False) -> RidgeStats:
    """One pass over the chunks: the statistics of all rows."""
    y_all = np.asarray(source.labels(), dtype=np.float64)
    sums, shift, y_shift = None, None, 0.0
    for n, x in _chunks(source, chunk_rows, callbacks, should_stop):
        yc = y_all[n:n + len(x)]
        if shift is None:
            shift, y_shift = x.mean(axis=0), float(yc.mean())
            sums = _ShiftedSums(x.shape[1], keep_rows)
        x -= shift
        sums.add(x, yc - y_shift)
    if sums is None:
        raise ValueError("no training rows")
    if sums.n != len(y_all):
        raise ValueError(f"chunks gave {sums.n} rows but there are {len(y_all)} labels")
    return sums.finish(shift, y_shift, y_all)


def accumulate_groups(source: ChunkSource, groups: Sequence[int] | np.ndarray, n_groups: int,
                      chunk_rows: int, callbacks: Callbacks | None = None,
                      should_stop: Callable[[], bool] | None = None
                      ) -> tuple[list[RidgeStats | None], RidgeStats]:
    """One pass over the chunks: the statistics of each group g = 0..n_groups−1 (the rows
    with groups == g; None for a group without rows) and of ALL rows (those with a negative
    group too). Each group's statistics equal `accumulate` over that group's rows alone, and
    the total equals `accumulate` over all of them, up to the order of float64 sums. Rows are
    kept (for a dual solve) for every set with fewer rows than features."""
    y_all = np.asarray(source.labels(), dtype=np.float64)
    groups = np.asarray(groups, dtype=np.int64)
    if groups.shape != y_all.shape:
        raise ValueError(f"{len(groups)} group labels for {len(y_all)} rows")
    p = int(source.n_features)
    counts = np.bincount(groups[groups >= 0], minlength=n_groups)[:n_groups]
    keep_all = len(y_all) < p            # the total is small: keep every row once
    sums: list[_ShiftedSums | None] = [
        _ShiftedSums(p, keep_rows=not keep_all and 0 < c < p) if c else None for c in counts]
    rest = _ShiftedSums(p)                # rows in no group: they count in the total only
    kept: list[np.ndarray] = []
    shift, y_shift, seen = None, 0.0, 0
    for n, x in _chunks(source, chunk_rows, callbacks, should_stop):
        yc, gc = y_all[n:n + len(x)], groups[n:n + len(x)]
        if shift is None:
            shift, y_shift = x.mean(axis=0), float(yc.mean())
        x -= shift
        yd = yc - y_shift
        for g in np.unique(gc):
            m = gc == g
            target = sums[g] if 0 <= g < n_groups else rest
            target.add(x[m], yd[m])
        if keep_all:
            kept.append(x)
        seen += len(x)
    if shift is None:
        raise ValueError("no training rows")
    if seen != len(y_all):
        raise ValueError(f"chunks gave {seen} rows but there are {len(y_all)} labels")
    total = _ShiftedSums(p)
    for s in [*sums, rest]:
        if s is not None:
            total.add_sums(s)
    all_rows = np.concatenate(kept) if keep_all else None
    stats = [None if s is None else
             s.finish(shift, y_shift, y_all[groups == g],
                      rows=None if all_rows is None else all_rows[groups == g])
             for g, s in enumerate(sums)]
    return stats, total.finish(shift, y_shift, y_all, rows=all_rows)
