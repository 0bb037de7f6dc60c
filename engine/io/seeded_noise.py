"""Seeded Gaussian noise that depends only on (seed, stream, row), never on how rows are
chunked: ε for row r comes from block r // BLOCK_ROWS, drawn whole by a generator seeded
with (seed, stream, block). So a 50k subset sees exactly the noise the same rows get in
the 1M set, and any chunk size gives bit-identical batches.

Noisy flux = flux + ε·error·noise_level, NOT clipped (the research clipped at 0 in only
some runs; clipping biases the noise, so we never do)."""

from __future__ import annotations

import zlib

import numpy as np

BLOCK_ROWS = 1024


def stream_id(name: str) -> int:
    """A stable 32-bit id for a noise stream (e.g. 'train', 'test_10k'), so different
    splits drawn with the same seed get independent noise."""
    return zlib.crc32(name.encode())


def block_noise(seed: int, stream: int, block: int, n_pixels: int) -> np.ndarray:
    """ε (BLOCK_ROWS, n_pixels) float32 for one block: a pure function of its inputs."""
    ss = np.random.SeedSequence([int(seed) & 0xFFFFFFFF, int(stream), int(block)])
    return np.random.default_rng(ss).standard_normal((BLOCK_ROWS, n_pixels), dtype=np.float32)


def noise_rows(seed: int, stream: int, start: int, stop: int, n_pixels: int) -> np.ndarray:
    """ε for rows [start, stop) assembled from whole blocks."""
    out = np.empty((stop - start, n_pixels), dtype=np.float32)
    for block in range(start // BLOCK_ROWS, (stop - 1) // BLOCK_ROWS + 1 if stop > start else 0):
        b0 = block * BLOCK_ROWS
        lo, hi = max(start, b0), min(stop, b0 + BLOCK_ROWS)
        out[lo - start:hi - start] = block_noise(seed, stream, block, n_pixels)[lo - b0:hi - b0]
    return out


def add_noise(flux: np.ndarray, error: np.ndarray, noise_level: float, *, seed: int,
              stream: int, start: int) -> np.ndarray:
    """flux + ε·error·noise_level for rows starting at global row `start` (float32)."""
    if noise_level == 0:
        return flux.astype(np.float32, copy=True)
    eps = noise_rows(seed, stream, start, start + len(flux), flux.shape[1])
    eps *= error
    eps *= np.float32(noise_level)
    eps += flux
    return eps
