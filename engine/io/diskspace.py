"""How many bytes a generated shard takes, how many the disk has, and what "disk full"
looks like in the exceptions of the libraries that write.

Why: a build that starts on a disk too small for it fails halfway (issue 11 item 7); the
builder checks the estimate against `shutil.disk_usage` before it writes anything, and the
shard writer reserves each shard's array bytes (`posix_fallocate`) when it opens the file.
The constants below were measured on real shards (docs/generator.md, "Disk use")."""

from __future__ import annotations

import errno
import os
import shutil
from pathlib import Path

from engine.errors import DataError

FLOAT_BYTES = 4                 # flux / error / noisy are float32 (the mask is never written)
PARAMS_ROW_BYTES = 330          # one params-table row (PyTables: 38 numbers + interp_param;
                                # measured 314 B/row at 10k–200k rows, + a string margin)
SHARD_FIXED_BYTES = 170_000     # wave + wave_edges + HDF5/PyTables metadata (measured
                                # 105–166 kB on 4–1000-row shards)
MANIFEST_BYTES = 8_192          # dataset.json + the build marker


def shard_bytes(n_rows: int, n_pixels: int, n_float_arrays: int) -> int:
    """Bytes one finished shard occupies on disk: the float32 arrays it writes plus its
    params table and fixed overhead (the int64 mask is allocated lazily and never written,
    so it costs nothing). Chunked arrays occupy whole chunks: 1000 rows in 64-row chunks
    take 1024 rows of disk."""
    from engine.io.pfsspec import chunk_shape

    chunks = chunk_shape((int(n_rows), int(n_pixels)))
    rows = int(n_rows) if chunks is None else -(-int(n_rows) // chunks[0]) * chunks[0]
    arrays = rows * int(n_pixels) * FLOAT_BYTES * int(n_float_arrays)
    return arrays + int(n_rows) * PARAMS_ROW_BYTES + SHARD_FIXED_BYTES


def free_bytes(path: str | Path) -> int:
    """Free bytes on the file system that holds `path` (its nearest existing parent)."""
    p = Path(path).absolute()
    while not p.exists() and p != p.parent:
        p = p.parent
    return int(shutil.disk_usage(p).free)


def fmt_bytes(n: float) -> str:
    """1234567 → '1.2 MB' (decimal units, as `df -H` prints)."""
    n = float(n)
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if abs(n) < 1000 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} TB"  # pragma: no cover


def is_disk_full(exc: BaseException) -> bool:
    """True for ENOSPC / EDQUOT however the library wrapped it (OSError errno, h5py's
    'errno = 28' text, PyTables' HDF5ExtError text)."""
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return True
    text = str(exc)
    return ("No space left on device" in text or "errno = 28" in text
            or "Disk quota exceeded" in text or "errno = 122" in text)


def disk_full_error(path: str | Path, *, needed: int | None = None,
                    what: str = "writing") -> DataError:
    """The one clear error a full disk becomes (names the path, bytes needed and free)."""
    free = free_bytes(path)
    need = f"; the build needs ~{fmt_bytes(needed)} more" if needed else ""
    return DataError(f"no space left on device while {what}{need}, {fmt_bytes(free)} free; "
                     "nothing half-written was kept under a final name",
                     path=path, key="disk space",
                     hint="free disk space or pass --out on a bigger disk, then rerun the "
                          "same command: finished shards are verified and kept")


def reserve(path: str | Path, nbytes: int) -> None:
    """Allocate `nbytes` of `path` now (posix_fallocate), so running out of space shows up
    at once and not as silently dropped HDF5 writes later. File systems that cannot
    fallocate are skipped (the builder's free-space check still ran)."""
    if nbytes <= 0 or not hasattr(os, "posix_fallocate"):
        return
    fd = os.open(path, os.O_RDWR)
    try:
        os.posix_fallocate(fd, 0, int(nbytes))
    except OSError as exc:
        if exc.errno in (errno.EOPNOTSUPP, errno.EINVAL, errno.ENOSYS):
            return
        raise
    finally:
        os.close(fd)
