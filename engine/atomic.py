"""Files written whole or not at all: a temporary name in the same folder, fsync, then
`os.replace` over the final name (atomic on POSIX within one filesystem).

Why one helper: a killed training process, a full disk or an exception halfway through a
write must never leave a torn run.json, checkpoint, model file, cache or store behind — a
reader sees the old file or the new one. Every writer in the engine goes through
`atomic_path` (or `atomic_dir` for a whole folder) instead of hand-writing tmp + rename.

Temporary names start with "." and end with ".tmp" (`is_temp_name`), so folder scans and
the Ray run-folder shipper can skip them."""

from __future__ import annotations

import json
import os
import secrets
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

TEMP_SUFFIX = ".tmp"


def temp_name(path: Path, suffix: str = TEMP_SUFFIX) -> Path:
    """A hidden name beside `path`, unique per process and call."""
    path = Path(path)
    return path.with_name(f".{path.name}.{os.getpid()}-{secrets.token_hex(3)}{suffix}")


def is_temp_name(name: str) -> bool:
    """True for the temporary names `temp_name` makes (a write in progress or torn)."""
    return name.startswith(".") and name.endswith(TEMP_SUFFIX)


@contextmanager
def atomic_path(path: str | Path, *, fsync: bool = True) -> Iterator[Path]:
    """Yield a temporary file name beside `path` for the caller (or a library: LightGBM,
    torch, DuckDB, pandas) to write; on a clean exit it is fsync'ed and renamed over
    `path`; on an exception it is removed and `path` is left as it was.

    The temporary file is not created here (some writers refuse an existing empty file)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_name(path)
    try:
        yield tmp
        if fsync:
            _fsync(tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    if fsync:
        _fsync(path.parent)


@contextmanager
def atomic_dir(path: str | Path) -> Iterator[Path]:
    """Yield an empty temporary folder beside `path`; on a clean exit it replaces `path`
    (any old folder is moved aside, then deleted), so a reader never sees a half-written
    folder; on an exception it is deleted and `path` is left as it was."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_name(path)
    tmp.mkdir()
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    old = temp_name(path, ".old")
    if path.exists():
        os.replace(path, old)
    os.replace(tmp, path)
    shutil.rmtree(old, ignore_errors=True)


def write_text(path: str | Path, text: str) -> Path:
    """Write `text` (UTF-8) to `path` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


def write_json(path: str | Path, data: Any, *, indent: int = 2, safe: bool = True) -> Path:
    """Write `data` as JSON atomically. `safe` (default): numpy → Python, NaN/inf → null
    (`engine.jsonsafe.json_safe`), strictly valid JSON; `safe=False` writes the data as
    given (Python's json: NaN stays NaN) for files read back only by Python."""
    if safe:
        from engine.jsonsafe import json_safe

        text = json.dumps(json_safe(data), indent=indent, allow_nan=False)
    else:
        text = json.dumps(data, indent=indent)
    return write_text(path, text + "\n")


def save_npy(path: str | Path, array: np.ndarray) -> Path:
    """np.save to `path` atomically (a killed process never leaves a torn cache file)."""
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        np.save(fh, array)
    return Path(path)


def write_parquet(path: str | Path, frame: Any) -> Path:
    """DataFrame.to_parquet (no index) to `path` atomically."""
    with atomic_path(path) as tmp:
        frame.to_parquet(tmp, index=False)
    return Path(path)


def write_csv(path: str | Path, frame: Any) -> Path:
    """DataFrame.to_csv (no index) to `path` atomically."""
    with atomic_path(path) as tmp:
        frame.to_csv(tmp, index=False)
    return Path(path)


def _fsync(path: Path) -> None:
    """Flush a file (or a folder's entries) to disk; a filesystem that cannot fsync a
    folder is not an error."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
