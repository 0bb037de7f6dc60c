"""Read and write `dataset.h5` files in the pfsspec layout (PFSSPEC_FORMAT.md §1).

Writer: the arrays go in with h5py under the pfsspec chunk rule, the params table goes
in LAST as the file's only pandas object, and the whole file is written under
`<name>.tmp` and renamed, so a crash never leaves a half-written `dataset.h5`.

Reader: `SpectrumFile` opens lazily, reads row ranges only, converts to float32 one block
at a time, fills NaN errors (counted) and checks values per block. Every malformed file
gives one `DataError` with file, key and fix."""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pandas as pd

from engine.errors import DataError
from engine.io.columns import ALL_COLUMN_NAMES, LOGG_COLUMNS, PFSSPEC_COLUMNS, empty_params
from engine.io.validate import (ERROR_KEY, FLUX_KEY, PARAMS_KEY, WAVE_EDGES_KEY, WAVE_KEY,
                                array_key, check_finite, clean_error, fill_nan_errors)

FLOAT_ARRAYS = ("flux", "error", "noisy", "cont")  # arrays that must hold floats
DEFAULT_CHUNK_ROWS = 4096
_REBUILD = "rebuild the dataset, e.g. `logg-engine data generate --preset default`"

try:  # extra HDF5 filters (blosc, zstd, ...) when the user has them
    import hdf5plugin  # noqa: F401
except ImportError:  # pragma: no cover - optional
    pass


# --------------------------------------------------------------------------- writer

def chunk_shape(shape: Sequence[int]) -> tuple[int, ...] | None:
    """pfsspec's `PfsObject.get_chunk_shape` rule (§1.2), used for every dtype: chunk only
    when some dim > 128 and size > 1 048 576; per dim ≤128 → 1, >65 536 → 4096,
    1 025..65 536 → whole, 129..1 024 → 64. None = contiguous."""
    if not any(s > 128 for s in shape) or int(np.prod(shape)) <= 1_048_576:
        return None
    out = []
    for s in shape:
        if s <= 128:
            out.append(1)
        elif s > 65_536:
            out.append(4096)
        elif s > 1_024:
            out.append(int(s))
        else:
            out.append(64)
    return tuple(out)


def _normalise_params(params: pd.DataFrame | None, n: int, path: Path | None = None
                      ) -> pd.DataFrame:
    """The table as pfsspec writes it: the 35 columns in order with their dtypes, then
    the logg columns, then any other user column; id = index = 0..n-1."""
    base = empty_params(n)
    if params is None:
        return base
    if len(params) != n:
        raise DataError(f"params has {len(params)} rows but the arrays have {n}",
                        path=path, key=PARAMS_KEY, hint="pass one params row per spectrum")
    src = params.reset_index(drop=True)
    for col in src.columns:
        if col == "id":
            continue
        values = src[col]
        try:
            if col == "interp_param":
                values = values.fillna("").astype(str)
            elif col in base.columns and base[col].dtype == np.int64:
                values = values.astype(np.int64)
            elif col in base.columns:
                values = pd.to_numeric(values, errors="raise").astype(np.float64)
        except (TypeError, ValueError) as exc:
            raise DataError(f"params column {col!r} cannot be stored as "
                            f"{base[col].dtype}: {exc}", path=path, key=f"{PARAMS_KEY}:{col}",
                            hint="pass numbers (NaN = unknown; int columns need values)"
                            ) from None
        base[col] = values.to_numpy()
    known = [c for c, _ in PFSSPEC_COLUMNS] + list(LOGG_COLUMNS)
    extra = [c for c in base.columns if c not in ALL_COLUMN_NAMES]
    return base[known + extra]


class SpectrumWriter:
    """Streaming writer for files too big to hold in memory.

    ``with SpectrumWriter(path, n_rows=N, wave=w) as w: w.write_rows(0, flux=f, error=e)``
    then ``w.set_params(df)``; the file appears at `path` only when the block exits
    without an exception (otherwise the temporary file is deleted)."""

    def __init__(self, path: str | Path, *, n_rows: int, wave: np.ndarray,
                 arrays: Sequence[str] = ("flux", "error", "mask"), dtype: str = "float32",
                 wave_edges: np.ndarray | None = None) -> None:
        if dtype not in ("float32", "float64"):
            raise DataError(f"dtype must be float32 or float64, not {dtype!r}", path=path)
        self.path = Path(path)
        self.tmp = self.path.with_name(self.path.name + ".tmp")
        self.n_rows = int(n_rows)
        self.wave = np.asarray(wave, dtype=np.float64)
        if self.wave.ndim != 1:
            raise DataError(f"wave must be 1-D, got shape {self.wave.shape}", path=path,
                            key=WAVE_KEY)
        self.n_pixels = len(self.wave)
        self.dtype = np.dtype(dtype)
        self.arrays = tuple(dict.fromkeys(["flux", *arrays]))
        self.wave_edges = _default_edges(self.wave) if wave_edges is None else \
            np.asarray(wave_edges, dtype=np.float64)
        self._params: pd.DataFrame | None = None
        self._h5: h5py.File | None = None

    def __enter__(self) -> SpectrumWriter:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._h5 = h5py.File(self.tmp, "w")
        sd = self._h5.create_group("spectrumdataset")
        sd.create_dataset("wave", data=self.wave)
        sd.create_dataset("wave_edges", data=self.wave_edges)
        for name in self.arrays:
            self._create(name, np.int64 if name == "mask" else self.dtype)
        return self

    def _create(self, name: str, dtype: Any) -> None:
        shape = (self.n_rows, self.n_pixels)
        # fillvalue 0: an unwritten mask costs no disk (chunks are allocated lazily)
        self._h5.create_dataset(array_key(name), shape=shape, dtype=dtype,
                                chunks=chunk_shape(shape), fillvalue=0)

    def write_rows(self, start: int, **arrays: np.ndarray) -> None:
        """Write rows [start, start+len) of each named array (converted to its dtype)."""
        for name, values in arrays.items():
            if values is None:
                continue
            if name not in self.arrays:
                self._create(name, np.int64 if name == "mask" else self.dtype)
                self.arrays += (name,)
            ds = self._h5[array_key(name)]
            values = np.asarray(values)
            if values.ndim != 2 or values.shape[1] != self.n_pixels \
                    or start + len(values) > self.n_rows:
                raise DataError(f"rows {start}..{start + len(values)} of shape "
                                f"{values.shape} do not fit {ds.shape}", path=self.path,
                                key=array_key(name))
            ds[start:start + len(values)] = values.astype(ds.dtype, copy=False)

    def set_params(self, params: pd.DataFrame | None) -> None:
        self._params = _normalise_params(params, self.n_rows, self.path)

    def __exit__(self, exc_type, exc, tb) -> None:
        try:
            self._h5.close()
            if exc_type is None:
                params = self._params if self._params is not None else empty_params(self.n_rows)
                # params last, by keyword (pandas 3), table format, no data_columns
                params.to_hdf(self.tmp, key=PARAMS_KEY, format="table", mode="a")
                os.replace(self.tmp, self.path)
        finally:
            if self.tmp.exists():
                self.tmp.unlink()


def _default_edges(wave: np.ndarray) -> np.ndarray:
    """(W+1,) bin edges at the mid-points, the outer ones mirrored (as in real files)."""
    if len(wave) < 2:
        return np.array([wave[0] - 0.5, wave[0] + 0.5]) if len(wave) else np.zeros(1)
    mid = 0.5 * (wave[1:] + wave[:-1])
    return np.concatenate([[2 * wave[0] - mid[0]], mid, [2 * wave[-1] - mid[-1]]])


def write_spectra(path: str | Path, *, wave: np.ndarray, flux: np.ndarray,
                  error: np.ndarray, params: pd.DataFrame | None,
                  mask: np.ndarray | None = None, noisy: np.ndarray | None = None,
                  extras: dict[str, np.ndarray] | None = None, dtype: str = "float32",
                  wave_edges: np.ndarray | None = None) -> Path:
    """Write one pfsspec-layout file from in-memory arrays (tmp + rename). `mask` None
    → an all-zero (all good) int64 mask that costs no disk. Returns the path."""
    flux = np.asarray(flux)
    if flux.ndim != 2:
        raise DataError(f"flux must be 2-D (N, W), got {flux.shape}", path=path, key=FLUX_KEY)
    names = ["flux", "error", "mask"] + (["noisy"] if noisy is not None else []) \
        + list(extras or {})
    with SpectrumWriter(path, n_rows=len(flux), wave=wave, arrays=names, dtype=dtype,
                        wave_edges=wave_edges) as w:
        w.write_rows(0, flux=flux, error=error, mask=mask, noisy=noisy, **(extras or {}))
        w.set_params(params)
    return Path(path)


# --------------------------------------------------------------------------- reader

class SpectrumFile:
    """Lazy reader of one pfsspec `dataset.h5` (float32/64, int32/64 mask, chunked or
    contiguous, any filter h5py knows, any wave_edges variant, table or fixed params).

    `read` / `iter_rows` return float32 blocks (mask: int64), errors NaN-filled from the
    nearest valid pixel; `nan_filled` counts those pixels over the rows read so far
    (`validate()` reads everything, so after it the counts are complete)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise DataError("file not found", path=self.path,
                            hint=f"check the path; {_REBUILD}")
        if self.path.stat().st_size == 0:
            raise DataError("file is empty (0 bytes)", path=self.path, hint=_REBUILD)
        try:
            self._h5 = h5py.File(self.path, "r", rdcc_nbytes=64 * 2**20)
        except OSError as exc:
            raise DataError(f"not a readable HDF5 file (truncated or corrupt?): {exc}",
                            path=self.path, hint=_REBUILD) from None
        try:
            self._open_checks()
        except BaseException:
            self._h5.close()
            raise
        self._params: pd.DataFrame | None = None
        self._counted = np.zeros(self.n_rows, dtype=bool)
        self._nan_edge = 0
        self._nan_interior = 0

    # -- structure -------------------------------------------------------------------
    def _open_checks(self) -> None:
        h5 = self._h5
        arrays = h5.get("dataset/arrays")
        names = [] if not isinstance(arrays, h5py.Group) else \
            [k for k in arrays if isinstance(arrays[k], h5py.Group) and "value" in arrays[k]]
        if "flux" not in names:
            raise DataError("no flux array", path=self.path, key=FLUX_KEY,
                            hint=f"not a pfsspec spectrum dataset or a partial build? {_REBUILD}")
        if "wave" in names:
            raise DataError("per-row wave grids are not supported (constant wave only)",
                            path=self.path, key="dataset/arrays/wave/value",
                            hint="resample the spectra onto one wave grid")
        self.array_names: tuple[str, ...] = tuple(names)
        flux = h5[FLUX_KEY]
        if flux.ndim != 2:
            raise DataError(f"flux must be 2-D (N, W), got shape {flux.shape}",
                            path=self.path, key=FLUX_KEY, hint=_REBUILD)
        self.n_rows, self.n_pixels = (int(s) for s in flux.shape)
        if self.n_rows == 0:
            raise DataError("flux has zero rows", path=self.path, key=FLUX_KEY,
                            hint=_REBUILD)
        for name in names:
            ds = h5[array_key(name)]
            if ds.shape != flux.shape:
                raise DataError(f"shape {ds.shape} differs from flux {flux.shape}",
                                path=self.path, key=array_key(name), hint=_REBUILD)
            kind = ds.dtype.kind
            want_float = name != "mask"
            if (want_float and kind != "f") or (not want_float and kind not in "iu"):
                raise DataError(f"wrong dtype {ds.dtype} (expected "
                                f"{'float32/float64' if want_float else 'int32/int64'})",
                                path=self.path, key=array_key(name), hint=_REBUILD)
            _check_filters(ds, self.path, array_key(name))
        if WAVE_KEY not in h5:
            raise DataError("no wave grid", path=self.path, key=WAVE_KEY,
                            hint="the file must hold the (W,) pixel-centre wavelengths")
        wave = h5[WAVE_KEY]
        if wave.shape != (self.n_pixels,) or wave.dtype.kind != "f":
            raise DataError(f"wave has shape {wave.shape} / dtype {wave.dtype}, expected "
                            f"({self.n_pixels},) float", path=self.path, key=WAVE_KEY,
                            hint=_REBUILD)
        n_params = _params_rows(h5)
        if n_params is None:
            raise DataError("no params table (partial build? pfsspec writes params last)",
                            path=self.path, key=PARAMS_KEY, hint=_REBUILD)
        if n_params != self.n_rows:
            raise DataError(f"params has {n_params} rows but flux has {self.n_rows}",
                            path=self.path, key=PARAMS_KEY,
                            hint=f"partial build or mismatched files; {_REBUILD}")

    @property
    def wave(self) -> np.ndarray:
        return self._h5[WAVE_KEY][()].astype(np.float64)

    @property
    def wave_edges(self) -> np.ndarray | None:
        """Stored edges as they are: (W+1,), (2, W), (W,) (pfsspec's lazy-mode bug) or None."""
        return self._h5[WAVE_EDGES_KEY][()] if WAVE_EDGES_KEY in self._h5 else None

    def has(self, name: str) -> bool:
        return name in self.array_names

    def dataset(self, name: str) -> h5py.Dataset:
        """The raw h5py dataset (for inspect and benchmarks; no checks)."""
        self._require(name)
        return self._h5[array_key(name)]

    def _require(self, name: str) -> None:
        if name not in self.array_names:
            raise DataError(f"array {name!r} not in file (has {', '.join(self.array_names)})",
                            path=self.path, key=array_key(name),
                            hint="use an array the file has, or rebuild with it")

    # -- params ----------------------------------------------------------------------
    @property
    def params(self) -> pd.DataFrame:
        """The params table, positional index 0..n-1, bytes decoded, checked once."""
        if self._params is None:
            self._params = _load_params(self.path, self.n_rows)
        return self._params

    # -- arrays ----------------------------------------------------------------------
    def read(self, name: str, start: int = 0, stop: int | None = None) -> np.ndarray:
        """Rows [start, stop) of one array: float32 (mask: int64), checked; error
        NaN-filled. Reads exactly those rows, nothing else."""
        self._require(name)
        stop = self.n_rows if stop is None else min(int(stop), self.n_rows)
        start = max(0, int(start))
        ds = self._h5[array_key(name)]
        if stop <= start:
            return np.empty((0, self.n_pixels), np.int64 if name == "mask" else np.float32)
        try:
            raw = ds[start:stop]
        except OSError as exc:
            raise DataError(f"cannot read rows {start}..{stop}: {exc}", path=self.path,
                            key=array_key(name),
                            hint="truncated file or missing HDF5 filter plugin "
                                 "(pip install hdf5plugin); " + _REBUILD) from None
        if name == "mask":
            return raw.astype(np.int64, copy=False)
        arr = raw.astype(np.float32, copy=False)
        if name == "error":
            edge, interior = clean_error(arr, path=self.path, row0=start,
                                         load_mask=lambda: self.read("mask", start, stop)
                                         if self.has("mask") else None)
            self._count_fill(start, stop, edge, interior)
        else:
            check_finite(arr, path=self.path, key=array_key(name), row0=start)
        return arr

    def _count_fill(self, start: int, stop: int, edge: int, interior: int) -> None:
        """Count filled pixels once per row, however often rows are re-read."""
        seen = self._counted[start:stop]
        if seen.all():
            return
        if seen.any():  # partly seen block: count the unseen rows exactly
            fresh = np.flatnonzero(~seen) + start
            raw = self._h5[ERROR_KEY][fresh[0]:fresh[-1] + 1][fresh - fresh[0]]
            edge, interior = fill_nan_errors(raw.astype(np.float32))
            self._counted[fresh] = True
        else:
            self._counted[start:stop] = True
        self._nan_edge += edge
        self._nan_interior += interior

    @property
    def nan_filled(self) -> dict[str, int]:
        """{"edge": pixels, "interior": pixels, "rows_checked": rows} filled so far."""
        return {"edge": self._nan_edge, "interior": self._nan_interior,
                "rows_checked": int(self._counted.sum())}

    def iter_rows(self, names: Sequence[str] = ("flux",), chunk_rows: int = DEFAULT_CHUNK_ROWS,
                  start: int = 0, stop: int | None = None
                  ) -> Iterator[tuple[int, int, dict[str, np.ndarray]]]:
        """Yield (start, stop, {name: block}) over [start, stop) in blocks of chunk_rows."""
        for name in names:
            self._require(name)
        stop = self.n_rows if stop is None else min(int(stop), self.n_rows)
        chunk_rows = max(1, int(chunk_rows))
        for s in range(max(0, int(start)), stop, chunk_rows):
            e = min(s + chunk_rows, stop)
            yield s, e, {name: self.read(name, s, e) for name in names}

    def validate(self, chunk_rows: int = DEFAULT_CHUNK_ROWS) -> dict[str, Any]:
        """Full pass over every array and the params (for `data inspect`); raises the
        first DataError, else returns the NaN-fill counts."""
        _ = self.params
        for _s, _e, _blocks in self.iter_rows(self.array_names, chunk_rows):
            pass
        return self.nan_filled

    # -- lifecycle -------------------------------------------------------------------
    def close(self) -> None:
        if getattr(self, "_h5", None) is not None and self._h5.id.valid:
            self._h5.close()

    def __enter__(self) -> SpectrumFile:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"SpectrumFile({str(self.path)!r}, rows={self.n_rows}, pixels={self.n_pixels})"


def _check_filters(ds: h5py.Dataset, path: Path, key: str) -> None:
    """Name a missing filter up front instead of failing mid-read."""
    plist = ds.id.get_create_plist()
    for i in range(plist.get_nfilters()):
        fid, _flags, _vals, fname = plist.get_filter(i)
        if not h5py.h5z.filter_avail(fid):
            raise DataError(f"compressed with HDF5 filter id {fid} "
                            f"({fname.decode(errors='replace') or '?'}) that is not available",
                            path=path, key=key,
                            hint="pip install hdf5plugin (blosc, zstd, lz4, bitshuffle, ...)")


def _params_rows(h5: h5py.File) -> int | None:
    """Row count of the params table without pandas (table or fixed format)."""
    grp = h5.get(PARAMS_KEY)
    if not isinstance(grp, h5py.Group):
        return None
    if isinstance(grp.get("table"), h5py.Dataset):
        return int(grp["table"].shape[0])
    if isinstance(grp.get("axis1"), h5py.Dataset):
        return int(grp["axis1"].shape[0])
    return None


def _load_params(path: Path, n_rows: int) -> pd.DataFrame:
    try:
        df = pd.read_hdf(path, key=PARAMS_KEY)
    except Exception as exc:  # PyTables raises many types on a damaged table
        raise DataError(f"cannot read the params table: {type(exc).__name__}: {exc}",
                        path=path, key=PARAMS_KEY, hint=_REBUILD) from None
    if not isinstance(df, pd.DataFrame):
        raise DataError(f"params is a {type(df).__name__}, not a table", path=path,
                        key=PARAMS_KEY, hint=_REBUILD)
    if len(df) != n_rows:
        raise DataError(f"params has {len(df)} rows but flux has {n_rows}", path=path,
                        key=PARAMS_KEY, hint=f"partial build? {_REBUILD}")
    df = df.reset_index(drop=True)
    for col in df.columns:
        if df[col].dtype == object and df[col].map(type).eq(bytes).any():
            df[col] = df[col].map(lambda v: v.decode("utf-8", "replace")
                                  if isinstance(v, bytes) else v)
    if "id" not in df.columns:
        raise DataError("params table has no id column", path=path, key=f"{PARAMS_KEY}:id",
                        hint=_REBUILD)
    ids = pd.to_numeric(df["id"], errors="coerce").to_numpy()
    if not np.array_equal(ids, np.arange(n_rows)):
        bad = int(np.flatnonzero(ids != np.arange(n_rows))[0])
        raise DataError(f"params id != row number (row {bad} has id {ids[bad]}); "
                        "params row k must describe array row k",
                        path=path, key=f"{PARAMS_KEY}:id",
                        hint=f"sort the table by id and renumber 0..N-1, or {_REBUILD}")
    float_cols = {c for c, t in PFSSPEC_COLUMNS if t != "str"} | set(LOGG_COLUMNS)
    for col in df.columns:
        if col in float_cols and not pd.api.types.is_numeric_dtype(df[col]):
            raise DataError(f"column {col!r} has dtype {df[col].dtype}, expected a number",
                            path=path, key=f"{PARAMS_KEY}:{col}", hint=_REBUILD)
    if "log_g" not in df.columns:
        raise DataError("params table has no log_g column (the target)", path=path,
                        key=f"{PARAMS_KEY}:log_g", hint=_REBUILD)
    return df
