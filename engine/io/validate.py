"""Per-chunk checks and repairs of spectrum arrays.

Why per chunk: a 200k-row file must never be loaded whole, so every value check runs on
the row block just read (a few vectorised passes, cheap next to the disk read). Every
failure is one `DataError` naming the file, the HDF5 key, the first bad row and a fix."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from engine.errors import DataError

FLUX_KEY = "dataset/arrays/flux/value"
ERROR_KEY = "dataset/arrays/error/value"
PARAMS_KEY = "dataset/params"
WAVE_KEY = "spectrumdataset/wave"
WAVE_EDGES_KEY = "spectrumdataset/wave_edges"


def array_key(name: str) -> str:
    return f"dataset/arrays/{name}/value"


def check_finite(arr: np.ndarray, *, path: Path, key: str, row0: int) -> None:
    """NaN/Inf in flux (or a noisy array) poisons every model and metric: refuse it.
    Fast path: one allocation-free sum (NaN/Inf propagate); only a non-finite sum
    (a bad value, or a rare overflow) triggers the exact element-wise check."""
    with np.errstate(over="ignore", invalid="ignore"):
        if np.isfinite(arr.sum()) or np.isfinite(arr).all():
            return
    bad = ~np.isfinite(arr)
    row, col = np.argwhere(bad)[0]
    n = int(bad.any(axis=1).sum())
    raise DataError(
        f"non-finite value ({arr[row, col]}) at row {row0 + row}, pixel {col}; "
        f"{n} row(s) of rows {row0}..{row0 + len(arr) - 1} affected",
        path=path, key=key,
        hint="the file is corrupt or a partial build (rows never written); rebuild it, "
             "e.g. `logg-engine data generate --preset default`",
    )


def check_error_positive(err: np.ndarray, *, path: Path, row0: int,
                         load_mask: Callable[[], np.ndarray | None]) -> None:
    """Errors must be finite and > 0 on unmasked pixels (noise = N(0,1)·error; SNR
    = flux/error). Masked pixels may hold anything. The mask is read only when a
    suspicious pixel shows up, so the common case costs one comparison pass."""
    bad = ~(err > 0) | np.isinf(err)  # NaN left after filling also counts as bad
    if not bad.any():
        return
    mask = load_mask()
    if mask is not None:
        bad &= mask == 0
        if not bad.any():
            return
    row, col = np.argwhere(bad)[0]
    allbad = bool(bad[row].all())
    what = "all pixels zero/NaN (row never written: partial build?)" if allbad else \
        f"error = {err[row, col]} at pixel {col}"
    raise DataError(
        f"non-positive or non-finite error on an unmasked pixel at row {row0 + row}: {what}",
        path=path, key=ERROR_KEY,
        hint="errors must be 1-sigma values > 0 where mask == 0; rebuild the file or mask "
             "those pixels (mask != 0)",
    )


def clean_error(err: np.ndarray, *, path: Path, row0: int,
                load_mask: Callable[[], np.ndarray | None]) -> tuple[int, int]:
    """Fill NaN errors in place and check positivity; returns (edge, interior) fills.

    Fast path for the research files (NaN only in the first/last pixel): fill those two
    columns, then one min and one max pass (NaN propagates into both) prove that every
    pixel is finite and > 0. Anything else takes the exact, allocating path."""
    edge = _fill_edges(err)
    if err.size:
        lo, hi = err.min(), err.max()
        if lo > 0 and np.isfinite(hi):
            return edge, 0
    edge2, interior = fill_nan_errors(err)
    check_error_positive(err, path=path, row0=row0, load_mask=load_mask)
    return edge + edge2, interior


def _fill_edges(err: np.ndarray) -> int:
    """The VIT rule: column 0 from column 1, column -1 from column -2 (when valid)."""
    width = err.shape[1] if err.ndim == 2 else 0
    if width < 2:
        return 0
    n = 0
    for col, nb in ((0, 1), (width - 1, width - 2)):
        fix = np.isnan(err[:, col]) & ~np.isnan(err[:, nb])
        if fix.any():
            err[fix, col] = err[fix, nb]
            n += int(fix.sum())
    return n


def fill_nan_errors(err: np.ndarray) -> tuple[int, int]:
    """Fill NaN error pixels in place from the nearest valid pixel of the same row.

    The research loader filled column 0 from column 1 and column -1 from column -2
    (VIT `fill_nan_with_nearest`); we do that first (the common case), then fill any
    interior NaN from its nearest valid neighbour. Returns (edge_filled,
    interior_filled) pixel counts so callers can report them. Rows that are entirely
    NaN are left alone (the positivity check reports them as unwritten rows)."""
    nan = np.isnan(err)
    if not nan.any():
        return 0, 0
    width = err.shape[1]
    edge = interior = 0
    if width > 1:
        for col, nb in ((0, 1), (width - 1, width - 2)):
            fix = nan[:, col] & ~nan[:, nb]
            if fix.any():
                err[fix, col] = err[fix, nb]
                nan[fix, col] = False
                edge += int(fix.sum())
    rows = np.flatnonzero(nan.any(axis=1) & ~nan.all(axis=1))
    if rows.size == 0:
        return edge, interior
    sub = err[rows]
    subnan = nan[rows]
    cols = np.arange(width)
    left = np.maximum.accumulate(np.where(subnan, -1, cols), axis=1)
    right = np.minimum.accumulate(np.where(subnan, width, cols)[:, ::-1], axis=1)[:, ::-1]
    dl = np.where(left >= 0, cols - left, width + 1)
    dr = np.where(right < width, right - cols, width + 1)
    src = np.where(dl <= dr, left, right)
    r, c = np.nonzero(subnan)
    sub[r, c] = sub[r, src[r, c]]
    err[rows] = sub
    on_edge = (c == 0) | (c == width - 1)
    edge += int(on_edge.sum())
    interior += int((~on_edge).sum())
    return edge, interior
