"""Datasets (a folder of pfsspec shards) and splits (row ranges over shards).

Layout: `<root>/<shard>/dataset.h5`, shard names like the research set (`train_200k_0..4`,
`val_1k`, `test_1k_0`, `test_10k`), optional manifest `<root>/dataset.json` written by the
generator (name, preset, seed, noise_level, shards {name: rows}). Aliases: `train` = all
`train_*` shards by trailing index, `val` = the `val_*` shard, `test` = `test_10k` if
present else the largest `test_*` shard. `train(size)` = the first `size` training rows
in shard order (500k = shards 0+1 + first 100k of shard 2), as the scaling study did."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

import pandas as pd

from engine.atomic import save_npy, write_json

from engine.errors import DataError, SpecError
from engine.io.seeded_noise import BLOCK_ROWS, add_noise, stream_id
from engine.io.pfsspec import DEFAULT_CHUNK_ROWS, SpectrumFile
from engine.io.validate import PARAMS_KEY

MANIFEST = "dataset.json"
LEGACY_GENERATOR_VERSIONS = ("1.0",)  # fingerprints from before the identity rule
BUILDING = ".building.json"  # written by the generator while a build is unfinished
SHARD_FILE = "dataset.h5"
DEFAULT_FROZEN_SEED = 42  # the research froze val/test noise with seed 42
_BUILD = "build one with `logg-engine data generate --preset default`"
_SIZE_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kKmM]?)\s*$")


def parse_size(text: str | int) -> int:
    """'50k' → 50000, '1M'/'1m' → 1000000, '2000' → 2000, '1.5k' → 1500."""
    if isinstance(text, (int, np.integer)) and not isinstance(text, bool):
        value: float = int(text)
    else:
        m = _SIZE_RE.match(str(text))
        if not m:
            raise SpecError(f"bad size {text!r}", key="size",
                            hint="use a row count like 2000, 50k, 1.5k or 1M")
        value = float(m.group(1)) * {"": 1, "k": 1e3, "m": 1e6}[m.group(2).lower()]
    if value <= 0 or value != int(value):
        raise SpecError(f"bad size {text!r}: must be a whole number of rows > 0", key="size",
                        hint="use a row count like 2000, 50k, 1.5k or 1M")
    return int(value)


def write_manifest(root: str | Path, *, name: str, preset: str | None, seed: int | None,
                   noise_level: float, shards: dict[str, int],
                   extra: dict[str, Any] | None = None) -> Path:
    """Write `<root>/dataset.json` atomically (for the generator)."""
    root = Path(root)
    doc = {"name": name, "preset": preset, "seed": seed, "noise_level": float(noise_level),
           "shards": {k: int(v) for k, v in shards.items()}, **(extra or {})}
    return write_json(root / MANIFEST, doc, safe=False)


def read_manifest(root: str | Path) -> dict[str, Any]:
    """`<root>/dataset.json` as a dict ({} when there is none); DataError when unreadable."""
    path = Path(root) / MANIFEST
    if not path.exists():
        return {}
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise DataError(f"unreadable manifest: {exc}", path=path,
                        hint="fix or delete dataset.json (it is optional)") from None
    if not isinstance(doc, dict):
        raise DataError("manifest is not a JSON object", path=path,
                        hint="fix or delete dataset.json (it is optional)")
    return doc


def _trailing_index(name: str) -> int:
    m = re.search(r"_(\d+)$", name)
    return int(m.group(1)) if m else 0


@dataclass(frozen=True)
class _Segment:
    shard: str
    start: int  # rows [start, stop) of the shard's file
    stop: int


class Dataset:
    """A folder of shards. Files open lazily and stay open until `close()`."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root).expanduser().resolve()
        if not self.root.is_dir():
            raise DataError("dataset folder not found", path=self.root, hint=_BUILD)
        if (self.root / BUILDING).exists():
            raise DataError("this dataset's build has not finished (an interrupted or failed "
                            "`logg-engine data generate`)", path=self.root, key=BUILDING,
                            hint="rerun the same `logg-engine data generate` command to "
                                 "finish it (finished shards are verified and kept)")
        self.manifest: dict[str, Any] = self._read_manifest()
        self.name: str = str(self.manifest.get("name") or self.root.name)
        self.noise_level: float = float(self.manifest.get("noise_level", 1.0))
        self.shards: tuple[str, ...] = tuple(sorted(
            p.parent.name for p in self.root.glob(f"*/{SHARD_FILE}")))
        if not self.shards:
            raise DataError(f"no shards (<shard>/{SHARD_FILE}) in the dataset folder",
                            path=self.root, hint=_BUILD)
        self._files: dict[str, SpectrumFile] = {}
        self._fingerprint: str | None = None

    def _read_manifest(self) -> dict[str, Any]:
        return read_manifest(self.root)

    # -- shards ----------------------------------------------------------------------
    def file(self, shard: str) -> SpectrumFile:
        if shard not in self.shards:
            raise DataError(f"no shard {shard!r} (has {', '.join(self.shards)})",
                            path=self.root, hint="use a shard name or train/val/test")
        if shard not in self._files:
            self._files[shard] = SpectrumFile(self.root / shard / SHARD_FILE)
        return self._files[shard]

    def rows(self, shard: str) -> int:
        return self.file(shard).n_rows

    def alias(self, role: str) -> list[str]:
        """Shards behind an alias: train (all, ordered), val (one), test (one)."""
        group = [s for s in self.shards if s.startswith(f"{role}_")]
        if not group:
            raise DataError(f"no {role}_* shard (has {', '.join(self.shards)})",
                            path=self.root, key=role, hint=_BUILD)
        if role == "train":
            return sorted(group, key=lambda s: (_trailing_index(s), s))
        if role == "test":
            if "test_10k" in group:
                return ["test_10k"]
            return [max(group, key=lambda s: (self.rows(s), s))]
        return [sorted(group, key=lambda s: (_trailing_index(s), s))[0]]

    def split(self, name: str) -> Split:
        """A shard by name, or the train/val/test alias (train = all training rows); a
        row range `<split>@<start>-<stop>` (what `Split.rows` names) is that split's rows."""
        m = re.fullmatch(r"(.+)@(\d+)-(\d+)", name)
        if m:
            return self.split(m.group(1)).rows(int(m.group(2)), int(m.group(3)))
        if name in ("train", "val", "test"):
            shards = self.alias(name)
        else:
            self.file(name)
            shards = [name]
        segs = [_Segment(s, 0, self.rows(s)) for s in shards]
        return Split(self, name, segs, stream="train" if name == "train" else shards[0])

    def train(self, size: int | str | None = None) -> Split:
        """The first `size` training rows in shard order (None = all of them)."""
        shards = self.alias("train")
        total = sum(self.rows(s) for s in shards)
        n = total if size is None else parse_size(size)
        if n > total:
            raise DataError(f"asked for {n} training rows but the dataset has {total} "
                            f"({len(shards)} train shard(s))", path=self.root, key="size",
                            hint=f"use --size ≤ {total}, or build a bigger dataset "
                                 "(`logg-engine data generate --preset ...`)")
        segs, left = [], n
        for s in shards:
            if left == 0:
                break
            take = min(left, self.rows(s))
            segs.append(_Segment(s, 0, take))
            left -= take
        return Split(self, "train" if n == total else f"train_{n}", segs, stream="train")

    # -- identity --------------------------------------------------------------------
    def identity(self) -> dict[str, Any]:
        """What built this dataset, from its manifest: generator_version, preset, seed
        (None where unknown: no manifest, e.g. research pfsspec files), and crlb_method
        where the CRLB columns were not computed by the exact model (`lattice`: from the
        node lattice's grid Jacobian; absent = exact, as every build before the option)."""
        m = self.manifest
        gv = m.get("generator_version")
        out = {"generator_version": None if gv is None else str(gv),
               "preset": m.get("preset"), "seed": m.get("seed")}
        method = m.get("crlb_method")
        if method not in (None, "exact"):
            out["crlb_method"] = str(method)
        return out

    def fingerprint(self) -> str:
        """Stable 16-hex hash of shard names, row counts, array dtypes and each shard's
        raw params table bytes (no spectrum array is read), plus the manifest's
        generator version, preset, seed and (when not exact) CRLB method: two builds by
        different generator versions, or whose CRLB columns were computed differently,
        never share a fingerprint, even where their labels agree. Stored runs key on it.
        Generator 1.0 datasets hash as before this rule (their identity was already in
        the params bytes), so stores that hold their runs keep matching them."""
        if self._fingerprint is None:
            h = hashlib.sha256()
            for s in self.shards:
                h.update(_shard_digest(self.file(s)).encode())
            ident = self.identity()
            if ident["generator_version"] not in (None, *LEGACY_GENERATOR_VERSIONS):
                h.update(json.dumps(ident, sort_keys=True, default=str).encode())
            self._fingerprint = h.hexdigest()[:16]
        return self._fingerprint

    def close(self) -> None:
        for f in self._files.values():
            f.close()
        self._files.clear()

    def __enter__(self) -> Dataset:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Dataset({str(self.root)!r}, shards={list(self.shards)})"


def _shard_digest(sf: SpectrumFile) -> str:
    h = hashlib.sha256()
    h.update(f"{sf.path.parent.name}|{sf.n_rows}|{sf.n_pixels}".encode())
    for name in sf.array_names:
        h.update(f"|{name}:{sf.dataset(name).dtype.str}".encode())
    grp = sf._h5[PARAMS_KEY]

    def visit(key: str, node: Any) -> None:
        if hasattr(node, "dtype") and not key.startswith("_i_"):
            h.update(key.encode())
            h.update(np.ascontiguousarray(node[()]).tobytes())

    grp.visititems(visit)
    h.update(np.ascontiguousarray(sf.wave).tobytes())
    return h.hexdigest()


class Split:
    """Rows [0, n_rows) made of consecutive shard segments; reads cross shard borders."""

    def __init__(self, dataset: Dataset, name: str, segments: Sequence[_Segment],
                 stream: str, row0: int = 0) -> None:
        self.dataset = dataset
        self.name = name
        self.segments = tuple(segments)
        self.stream = stream
        self.row0 = int(row0)  # this split's first row within its noise stream
        self._offsets = np.cumsum([0] + [s.stop - s.start for s in self.segments])
        self.n_rows = int(self._offsets[-1])
        first = dataset.file(self.segments[0].shard)
        self.n_pixels = first.n_pixels
        self._params: pd.DataFrame | None = None
        for seg in self.segments[1:]:
            f = dataset.file(seg.shard)
            if f.n_pixels != self.n_pixels or not np.array_equal(f.wave, first.wave):
                raise DataError(f"shard {seg.shard} has a different wave grid than "
                                f"{self.segments[0].shard}", path=f.path,
                                key="spectrumdataset/wave", hint="rebuild the dataset")

    @property
    def shards(self) -> list[str]:
        return [s.shard for s in self.segments]

    def rows(self, start: int, stop: int) -> Split:
        """Rows [start, stop) as a split of their own (named `<name>@<start>-<stop>`). Its
        seeded noise is the parent's on the same rows (same stream, offset row0)."""
        start, stop = max(0, int(start)), min(int(stop), self.n_rows)
        if not start < stop:
            raise DataError(f"empty row range [{start}, {stop}) of {self.name} "
                            f"({self.n_rows} rows)", path=self.dataset.root, key=self.name,
                            hint=f"use <split>@<start>-<stop> with start < stop ≤ {self.n_rows}")
        segs = []
        for i, seg in enumerate(self.segments):
            lo, hi = max(start, self._offsets[i]), min(stop, self._offsets[i + 1])
            if lo < hi:
                off = seg.start - int(self._offsets[i])
                segs.append(_Segment(seg.shard, int(lo + off), int(hi + off)))
        return Split(self.dataset, f"{self.name}@{start}-{stop}", segs, self.stream,
                     self.row0 + start)

    @property
    def wave(self) -> np.ndarray:
        return self.dataset.file(self.segments[0].shard).wave

    def has(self, name: str) -> bool:
        return all(self.dataset.file(s.shard).has(name) for s in self.segments)

    @property
    def params(self) -> pd.DataFrame:
        """Concatenated params, positional index 0..n_rows-1 (the `id` column keeps the
        shard-local row id)."""
        if self._params is None:
            parts = [self.dataset.file(s.shard).params.iloc[s.start:s.stop]
                     for s in self.segments]
            self._params = pd.concat(parts, ignore_index=True)
        return self._params

    @property
    def log_g(self) -> np.ndarray:
        return self.params["log_g"].to_numpy(np.float64)

    def read(self, name: str, start: int = 0, stop: int | None = None) -> np.ndarray:
        """Rows [start, stop) of one array as float32 (mask int64), across shards."""
        stop = self.n_rows if stop is None else min(int(stop), self.n_rows)
        start = max(0, int(start))
        parts = []
        for i, seg in enumerate(self.segments):
            lo, hi = max(start, self._offsets[i]), min(stop, self._offsets[i + 1])
            if lo < hi:
                off = seg.start - int(self._offsets[i])
                parts.append(self.dataset.file(seg.shard).read(name, lo + off, hi + off))
        if not parts:
            return self.dataset.file(self.segments[0].shard).read(name, 0, 0)
        return parts[0] if len(parts) == 1 else np.concatenate(parts)

    def iter_chunks(self, names: Sequence[str] = ("flux",),
                    chunk_rows: int = DEFAULT_CHUNK_ROWS, start: int = 0,
                    stop: int | None = None
                    ) -> Iterator[tuple[int, int, dict[str, np.ndarray]]]:
        """Yield (start, stop, {name: float32 block}) in blocks of chunk_rows."""
        stop = self.n_rows if stop is None else min(int(stop), self.n_rows)
        for s in range(max(0, int(start)), stop, max(1, int(chunk_rows))):
            e = min(s + int(chunk_rows), stop)
            yield s, e, {n: self.read(n, s, e) for n in names}

    # -- noise -----------------------------------------------------------------------
    def uses_stored_noisy(self, noise_level: float = 1.0, seed: int | None = None) -> bool:
        """True when `noisy()` returns the file's stored frozen array."""
        return seed is None and self.has("noisy") and \
            float(noise_level) == self.dataset.noise_level

    def noisy_chunks(self, noise_level: float = 1.0, seed: int = 0,
                     chunk_rows: int = DEFAULT_CHUNK_ROWS
                     ) -> Iterator[tuple[int, int, np.ndarray, np.ndarray]]:
        """Yield (start, stop, X float32, y float64 log_g) with ONE seeded realisation:
        X = flux + ε·error·noise_level, ε a function of (seed, split stream, row) only."""
        y = self.log_g
        stream = stream_id(self.stream)
        for s, e, b in self.iter_chunks(("flux", "error"), chunk_rows):
            x = add_noise(b["flux"], b["error"], noise_level, seed=seed, stream=stream,
                          start=self.row0 + s)
            yield s, e, x, y[s:e]

    def noisy(self, noise_level: float = 1.0, seed: int | None = None) -> np.ndarray:
        """The frozen noisy flux (n_rows, W) float32 every model is scored on: the stored
        `noisy` array when it matches (seed None, noise_level = the stored level), else
        a seeded realisation (seed None → 42) cached on disk and reused."""
        if self.uses_stored_noisy(noise_level, seed):
            return self.read("noisy")
        path = self.noisy_cache_path(noise_level, seed)
        if path.exists():
            try:
                arr = np.load(path, mmap_mode=None)
                if arr.shape == (self.n_rows, self.n_pixels) and arr.dtype == np.float32:
                    return arr
            except (OSError, ValueError):
                pass  # damaged cache: rebuild it below
        out = np.empty((self.n_rows, self.n_pixels), dtype=np.float32)
        seed_ = DEFAULT_FROZEN_SEED if seed is None else int(seed)
        for s, e, x, _y in self.noisy_chunks(noise_level, seed_, 8 * BLOCK_ROWS):
            out[s:e] = x
        save_npy(path, out)
        return out

    def noisy_cache_path(self, noise_level: float, seed: int | None) -> Path:
        """`<root>/.cache/noisy_<split>_<level>_<seed>_<fp>.npy`; fp = dataset
        fingerprint, so a rebuilt dataset never reuses a stale realisation."""
        seed_ = DEFAULT_FROZEN_SEED if seed is None else int(seed)
        level = f"{float(noise_level):g}"
        return (self.dataset.root / ".cache" /
                f"noisy_{self.name}_{level}_{seed_}_{self.dataset.fingerprint()[:8]}.npy")

    def __repr__(self) -> str:
        return f"Split({self.name!r}, rows={self.n_rows}, shards={self.shards})"


def list_datasets(workspace: str | Path) -> list[str]:
    root = Path(workspace) / "datasets"
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir()
                  if p.is_dir() and any(p.glob(f"*/{SHARD_FILE}")))


def resolve_dataset(name_or_path: str | Path, workspace: str | Path) -> Dataset:
    """A dataset folder path, or a name under `<workspace>/datasets/`."""
    p = Path(name_or_path).expanduser()
    if p.is_dir() and (any(p.glob(f"*/{SHARD_FILE}")) or (p / MANIFEST).exists()):
        return Dataset(p)
    cand = Path(workspace) / "datasets" / str(name_or_path)
    if cand.is_dir():
        return Dataset(cand)
    if p.is_dir():
        return Dataset(p)  # a folder without shards: says so
    have = list_datasets(workspace)
    listing = ", ".join(have) if have else "none"
    raise DataError(f"no dataset {str(name_or_path)!r} (datasets in "
                    f"{Path(workspace) / 'datasets'}: {listing})",
                    path=Path(workspace) / "datasets", key="dataset", hint=_BUILD)
