"""Is a generated shard whole? The check a shard passes before it is renamed into place,
and again when a resumed build wants to skip it.

Why: on a full disk HDF5 can drop writes without raising, and a file that was renamed
anyway looks finished (issue 11 item 7: 808 of 1000 flux rows all zero, no params table,
and a resume said "already built"). So a shard counts as built only when it opens as a
pfsspec file (shapes, dtypes, wave, params table with one row per spectrum), carries the
writer's completeness record (`logg_build`: complete, rows, CRC-32 per array) whose
checksums match the bytes on disk, and has no all-zero flux row."""

from __future__ import annotations

import json
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from engine.errors import DataError
from engine.io.validate import array_key

BUILD_ATTR = "logg_build"
_BLOCK = 4096
_FIX = "rerun the same `logg-engine data generate` command: it rebuilds this shard"


def verify_shard(path: str | Path, *, rows: int | None = None,
                 arrays: Sequence[str] = (), require_record: bool = True) -> dict[str, Any]:
    """Raise DataError (file, what is wrong, fix) unless the shard at `path` is whole.
    `rows` / `arrays`: what the build expects. `require_record=False` accepts a shard
    without a completeness record (one built before records existed, or by pfsspec)
    after the structural and all-zero-row checks. Returns {rows, checksummed}."""
    from engine.io.pfsspec import SpectrumFile

    path = Path(path)
    with SpectrumFile(path) as sf:  # structure: shapes, dtypes, wave, params row count
        if rows is not None and sf.n_rows != rows:
            raise DataError(f"has {sf.n_rows} rows, the build expects {rows}", path=path,
                            hint=_FIX)
        for a in arrays:
            if not sf.has(a):
                raise DataError(f"array {a!r} is missing", path=path, key=array_key(a),
                                hint=_FIX)
        _ = sf.params  # the table itself reads back (ids, log_g, dtypes)
        record = _record(sf, path, require_record)
        crcs = _scan(sf, record.get("crc32", {}) if record else {})
    if record:
        for a, want in record.get("crc32", {}).items():
            if crcs.get(a) != int(want):
                raise DataError(f"array {a!r} does not match its checksum (the bytes on disk "
                                "are not the bytes written: a full disk or a torn write)",
                                path=path, key=array_key(a), hint=_FIX)
    return {"rows": rows, "checksummed": bool(record)}


def _record(sf, path: Path, required: bool) -> dict[str, Any] | None:
    raw = sf._h5.attrs.get(BUILD_ATTR)
    if raw is None:
        if required:
            raise DataError("no completeness record (the build did not finish this shard)",
                            path=path, key=BUILD_ATTR, hint=_FIX)
        return None
    try:
        record = json.loads(raw)
    except (TypeError, ValueError):
        raise DataError("unreadable completeness record", path=path, key=BUILD_ATTR,
                        hint=_FIX) from None
    if not record.get("complete") or int(record.get("rows", -1)) != sf.n_rows:
        raise DataError(f"completeness record says {record.get('rows')} rows / complete="
                        f"{record.get('complete')}, the file has {sf.n_rows}", path=path,
                        key=BUILD_ATTR, hint=_FIX)
    return record


def _scan(sf, want: dict[str, Any]) -> dict[str, int]:
    """One pass over the arrays: CRC-32 of those with a recorded checksum, and the
    all-zero flux row check."""
    names = list(dict.fromkeys(["flux", *want]))
    crc = {a: 0 for a in want}
    zero_rows, first = 0, None
    for s in range(0, sf.n_rows, _BLOCK):
        e = min(sf.n_rows, s + _BLOCK)
        for a in names:
            block = sf.dataset(a)[s:e]
            if a in crc:
                crc[a] = zlib.crc32(np.ascontiguousarray(block).tobytes(), crc[a])
            if a == "flux":
                zero = ~block.any(axis=1)
                if zero.any():
                    zero_rows += int(zero.sum())
                    first = s + int(np.flatnonzero(zero)[0]) if first is None else first
    if zero_rows:
        raise DataError(f"{zero_rows} of {sf.n_rows} flux rows are all zero (first: row "
                        f"{first}): the rows were never written", path=sf.path,
                        key=array_key("flux"), hint=_FIX)
    return crc
