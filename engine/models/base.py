"""What a streaming model reads: a `ChunkSource` gives training rows in order, chunk by
chunk, so no model needs the whole (N, 4096) matrix in RAM.

Why a protocol and not `Split` itself: the estimators must also fit plain arrays (the
sklearn oracle tests and benchmarks), and the noisy training realisation (one seeded
draw, optionally K augmented copies) is a property of the run, not of the split.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Protocol, runtime_checkable

import numpy as np


@runtime_checkable
class ChunkSource(Protocol):
    """Rows of a design matrix, read in order. `chunks(k)` yields float32 (≤k, n_features)
    arrays whose concatenation is the whole matrix; `labels()` is the (n_rows,) target."""

    n_rows: int
    n_features: int

    def labels(self) -> np.ndarray: ...

    def chunks(self, chunk_rows: int) -> Iterator[np.ndarray]: ...


class ArrayChunks:
    """A ChunkSource over in-memory arrays (tests, benchmarks, small validation sets)."""

    def __init__(self, X: np.ndarray, y: np.ndarray | None = None) -> None:
        if X.ndim != 2:
            raise ValueError(f"X must be 2-D, got shape {X.shape}")
        self.X = X
        self.y = None if y is None else np.asarray(y)
        self.n_rows, self.n_features = X.shape

    def labels(self) -> np.ndarray:
        if self.y is None:
            raise ValueError("this ArrayChunks has no labels")
        return self.y

    def chunks(self, chunk_rows: int) -> Iterator[np.ndarray]:
        for start in range(0, self.n_rows, chunk_rows):
            yield self.X[start:start + chunk_rows]


class NoisySplitSource:
    """The training rows of a run: noisy flux of a `Split` (engine.io.dataset) with one
    seeded noise realisation per copy (copy k uses seed + k), labels = log g.

    `Split.noisy_chunks` makes the noise a deterministic function of (seed, row), so the
    rows are the same whatever chunk size a model asks for."""

    def __init__(self, split: Any, noise_level: float, seed: int, copies: int = 1,
                 label: str = "log_g") -> None:
        if copies < 1:
            raise ValueError(f"copies must be >= 1, got {copies}")
        self.split = split
        self.noise_level = float(noise_level)
        self.seed = int(seed)
        self.copies = int(copies)
        self.label = label
        self.n_rows = int(split.n_rows) * self.copies
        self.n_features = int(getattr(split, "n_pixels", 0) or _first_width(self))

    def labels(self) -> np.ndarray:
        y = np.asarray(self.split.params[self.label], dtype=np.float64)
        return np.tile(y, self.copies)

    def chunks(self, chunk_rows: int) -> Iterator[np.ndarray]:
        for k in range(self.copies):
            for item in self.split.noisy_chunks(self.noise_level, self.seed + k, chunk_rows):
                yield _as_array(item)


def _as_array(item: Any) -> np.ndarray:
    """`noisy_chunks` yields (start, stop, X, y) tuples (or bare arrays): take X."""
    if isinstance(item, tuple):
        item = next(a for a in item if isinstance(a, np.ndarray) and a.ndim == 2)
    return np.asarray(item, dtype=np.float32)


def _first_width(source: NoisySplitSource) -> int:
    for item in source.split.noisy_chunks(source.noise_level, source.seed, 1):
        return _as_array(item).shape[1]
    return 0


def as_source(X: Any, y: Any = None) -> ChunkSource:
    """Wrap arrays as a ChunkSource; pass a ChunkSource through unchanged."""
    if isinstance(X, np.ndarray):
        if y is None:
            raise ValueError("fit(X, y): y is required when X is an array")
        if len(y) != len(X):
            raise ValueError(f"X has {len(X)} rows but y has {len(y)}")
        return ArrayChunks(X, np.asarray(y, dtype=np.float64))
    if isinstance(X, ChunkSource):
        return X
    raise TypeError(f"X must be an ndarray or a ChunkSource, got {type(X).__name__}")


class TrainingCancelled(Exception):
    """Raised by a trainer when its `should_stop()` turned True (SIGTERM): the runner
    ends the run with status `cancelled` instead of `failed`."""
