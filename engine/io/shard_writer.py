"""The generator's shard writer: resumable inside a shard, space reserved up front,
checksummed, verified before it gets its final name.

Why not `SpectrumWriter`: a 200k-row shard takes minutes, and issue 11 asks that a killed
build continue where it stopped and that a full disk never leave a shard that looks
finished. So:

- rows go to `<shard>/dataset.h5.partial`; its arrays are allocated when the file is
  created (HDF5 early allocation, no fill writes) and the bytes reserved with
  `posix_fallocate`, so a later row write only touches raw data, never HDF5 metadata: a
  kill -9 leaves a file whose checkpointed rows are intact;
- every `checkpoint()` flushes and fsyncs the file, then atomically rewrites
  `<shard>/dataset.h5.progress.json` = {key, rows}; a new writer with the same key
  continues from `rows` (the key names the build and the shard, so a stale partial of
  another build is discarded);
- `finish()` appends the params table, stores a completeness record (`logg_build`
  attribute: rows, arrays, CRC-32 of each array's bytes as they were meant to be written),
  fsyncs, reopens and verifies the file (engine.io.shard_verify), and only then renames it
  to `dataset.h5`."""

from __future__ import annotations

import json
import os
import zlib
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pandas as pd

from engine.io.diskspace import reserve
from engine.io.pfsspec import _default_edges, _normalise_params, chunk_shape
from engine.io.shard_verify import BUILD_ATTR, verify_shard
from engine.io.validate import PARAMS_KEY, array_key

PARTIAL = ".partial"
PROGRESS = ".progress.json"
SIDE = ".side.npz"   # per-row results computed after the rows (the CRLB pass), checkpointed


def partial_path(path: Path) -> Path:
    return path.with_name(path.name + PARTIAL)


def progress_path(path: Path) -> Path:
    return path.with_name(path.name + PROGRESS)


def side_path(path: Path) -> Path:
    return path.with_name(path.name + SIDE)


def partial_rows(path: Path) -> int:
    """Rows a partial shard holds by its last checkpoint (0 when there is none)."""
    try:
        return int(json.loads(progress_path(path).read_text())["rows"])
    except (OSError, ValueError, KeyError, TypeError):
        return 0


def discard_partial(path: Path) -> None:
    """Remove a shard's temporary files (its final file is left alone)."""
    for p in (partial_path(path), progress_path(path), side_path(path)):
        p.unlink(missing_ok=True)


class ShardWriter:
    """``w = ShardWriter(path, ...); start = w.open(); w.write_rows(...); w.checkpoint(k);
    ...; w.finish(params)``. `open()` returns the rows already on disk (0 for a new file);
    `resumed_from` / `discarded` say what it found."""

    def __init__(self, path: str | Path, *, n_rows: int, wave: np.ndarray,
                 arrays: tuple[str, ...], key: str, wave_edges: np.ndarray | None = None,
                 meta: dict[str, Any] | None = None) -> None:
        self.path = Path(path)
        self.partial = partial_path(self.path)
        self.progress = progress_path(self.path)
        self.n_rows = int(n_rows)
        self.wave = np.asarray(wave, np.float64)
        self.wave_edges = _default_edges(self.wave) if wave_edges is None else \
            np.asarray(wave_edges, np.float64)
        self.arrays = tuple(dict.fromkeys(["flux", *arrays]))
        self.float_arrays = tuple(a for a in self.arrays if a != "mask")
        self.key = str(key)
        self.meta = dict(meta or {})
        self._h5: h5py.File | None = None
        self._crc = {a: 0 for a in self.float_arrays}
        self.resumed_from = 0
        self.discarded: str | None = None

    # -- open / resume ----------------------------------------------------------------
    def open(self) -> int:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        rows = self._resume()
        if rows is None:
            discard_partial(self.path)
            self._create()
            rows = 0
        self.resumed_from = rows
        return rows

    def _resume(self) -> int | None:
        if not self.partial.exists():
            return None
        try:
            state = json.loads(self.progress.read_text())
            rows = int(state["rows"])
            if state.get("key") != self.key or not 0 <= rows <= self.n_rows:
                self.discarded = "it belongs to another build"
                return None
            self._h5 = h5py.File(self.partial, "r+")
            for a in self.arrays:
                if self._h5[array_key(a)].shape != (self.n_rows, self.wave.size):
                    raise ValueError(f"{a} has the wrong shape")
        except (OSError, ValueError, KeyError, TypeError) as exc:
            self.close()
            self.discarded = f"unreadable ({type(exc).__name__}: {exc})"
            return None
        for s in range(0, rows, 4096):  # the running checksums of the rows already there
            e = min(rows, s + 4096)
            for a in self.float_arrays:
                self._crc[a] = zlib.crc32(self._h5[array_key(a)][s:e].tobytes(), self._crc[a])
        return rows

    def _create(self) -> None:
        self._h5 = h5py.File(self.partial, "w")
        sd = self._h5.create_group("spectrumdataset")
        sd.create_dataset("wave", data=self.wave)
        sd.create_dataset("wave_edges", data=self.wave_edges)
        shape = (self.n_rows, self.wave.size)
        for a in self.arrays:
            if a == "mask":  # never written: lazily allocated zeros cost no disk
                self._h5.create_dataset(array_key(a), shape=shape, dtype=np.int64,
                                        chunks=chunk_shape(shape), fillvalue=0)
                continue
            dcpl = h5py.h5p.create(h5py.h5p.DATASET_CREATE)
            dcpl.set_alloc_time(h5py.h5d.ALLOC_TIME_EARLY)
            self._h5.create_dataset(array_key(a), shape=shape, dtype=np.float32,
                                    chunks=chunk_shape(shape), fillvalue=0, dcpl=dcpl,
                                    fill_time="never")
        self._h5.flush()
        reserve(self.partial, os.path.getsize(self.partial))
        self.checkpoint(0)

    # -- rows ------------------------------------------------------------------------
    def write_rows(self, start: int, **arrays: np.ndarray | None) -> None:
        """Write rows [start, start+len) in order (the checksums are running CRCs)."""
        for name, values in arrays.items():
            if values is None:
                continue
            v = np.ascontiguousarray(values, dtype=np.float32)
            self._h5[array_key(name)][start:start + len(v)] = v
            self._crc[name] = zlib.crc32(v.tobytes(), self._crc[name])

    def read_rows(self, name: str, start: int, stop: int) -> np.ndarray:
        """Rows already written (resume recomputes SNRs and CRLB inputs from them)."""
        return self._h5[array_key(name)][start:stop]

    def checkpoint(self, rows: int) -> None:
        """Make rows [0, rows) durable, then record that they are."""
        self._h5.flush()
        _fsync(self.partial)
        tmp = self.progress.with_name(self.progress.name + ".tmp")
        tmp.write_text(json.dumps({"key": self.key, "rows": int(rows)}))
        os.replace(tmp, self.progress)

    # -- a second pass over the rows (CRLB) ---------------------------------------------
    def save_side(self, values: np.ndarray, done: int) -> None:
        """Checkpoint a per-row result computed after the rows (columns [0, done) of
        `values` are final): the CRLB pass of a 10k test shard takes an hour at 2.7/s."""
        side = side_path(self.path)
        tmp = side.with_name(side.name + ".tmp.npz")
        np.savez(tmp, values=values, done=np.int64(done), key=np.array(self.key))
        os.replace(tmp, side)

    def load_side(self, shape: tuple[int, ...]) -> tuple[np.ndarray, int] | None:
        """(values, done) from this build's side checkpoint, else None."""
        try:
            with np.load(side_path(self.path)) as z:
                if str(z["key"]) != self.key or z["values"].shape != tuple(shape):
                    return None
                return z["values"].copy(), int(z["done"])
        except (OSError, ValueError, KeyError):
            return None

    # -- finish ------------------------------------------------------------------------
    def finish(self, params: pd.DataFrame | None) -> None:
        """Params table, completeness record, fsync, verify, rename into place."""
        self.checkpoint(self.n_rows)
        self.close()
        table = _normalise_params(params, self.n_rows, self.path)
        table.to_hdf(self.partial, key=PARAMS_KEY, format="table", mode="a")
        record = {"complete": True, "rows": self.n_rows, "arrays": list(self.float_arrays),
                  "crc32": {a: int(c) for a, c in self._crc.items()}, **self.meta}
        with h5py.File(self.partial, "r+") as h5:
            h5.attrs[BUILD_ATTR] = json.dumps(record)
        _fsync(self.partial)
        verify_shard(self.partial, rows=self.n_rows, arrays=self.float_arrays)
        os.replace(self.partial, self.path)
        _fsync(self.path.parent)
        self.progress.unlink(missing_ok=True)
        side_path(self.path).unlink(missing_ok=True)

    def close(self) -> None:
        if self._h5 is not None:
            try:
                if self._h5.id.valid:
                    self._h5.close()
            finally:
                self._h5 = None


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)

