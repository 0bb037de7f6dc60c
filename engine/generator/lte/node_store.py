"""The persistent node lattice: every BOSZ-like node spectrum (T_eff 250 K, log g 0.5,
[M/H], [α/M], [C/M] 0.25; 30,240 in the prior box) synthesised once per workspace and
kept on disk, so every snapped v2 build (`bosz-1m`) after the first costs only
interpolation (issue 11 item 5).

Where: `<workspace>/cache/lattice/<key>/`, key = `v<generator version>-<digest>` of
everything that determines a node spectrum (physics, the data files the model reads, the
LSF width, the normalisation, the node grid, the storage format). A change to any of them
gives a new key, never a silently stale spectrum; `logg-engine data lattice clear` removes
old keys.

How: node spectra (normalised, float32, 16 kB each; 0.5 GB for the whole box) are written
in segments of up to `segment_nodes` nodes, each one `.npz` file holding the node indices,
the spectra and a SHA-256 of both, written atomically (engine.atomic: tmp + rename). A build
killed at any point keeps its finished segments and a rerun synthesises only what is
missing; a segment is verified (keys, shape, dtype, finite, key, digest) before it is used,
and one that fails is deleted with a message and its nodes synthesised again. Only the
nodes a build asks for are synthesised. Several builds may share a lattice: a node
synthesised twice is stored twice and read once (first segment wins)."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from pathlib import Path

import numpy as np

from engine.errors import DataError
from engine.events import Callbacks, emit
from engine.generator.priors import BOX, GRID_STEP
from engine.generator.synth import PARAMS
from engine.procs import pid_alive

FORMAT = 1                       # storage format: part of the key
SEGMENT_NODES = 256              # nodes per segment file (4 MB; ~15 s of compiled synthesis)
DATA = Path(__file__).resolve().parents[3] / "data"
NODE_DATA_FILES = ("atmosnet_cool.npz", "linelist_lte.csv", "partition_irwin.csv",
                   "hydrogen_lines.csv")            # what lte.synth reads (noise data does not count)

LO = np.array([BOX[p][0] for p in PARAMS])
STEP = np.array([GRID_STEP[p] for p in PARAMS])
N_NODES = tuple(int(x) for x in np.round((np.array([BOX[p][1] for p in PARAMS]) - LO) / STEP) + 1)
N_TOTAL = int(np.prod(N_NODES))


def flat_index(keys: np.ndarray) -> np.ndarray:
    """Integer node coordinates (..., 5) → flat node number (C order, [C/M] fastest)."""
    keys = np.asarray(keys)
    return np.ravel_multi_index(tuple(np.moveaxis(keys, -1, 0)), N_NODES)


def node_theta(flat: np.ndarray) -> np.ndarray:
    """Flat node numbers (n,) → θ (n, 5) of those nodes."""
    idx = np.stack(np.unravel_index(np.asarray(flat, np.int64), N_NODES), -1)
    return LO + STEP * idx


def _file_digest(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def lattice_identity(physics: str = "lte") -> dict:
    """What determines a node spectrum, as a JSON-able document (its digest is the key)."""
    from engine.generator.lsf import FWHM_A
    from engine.generator.lte import grids
    from engine.generator.physics import generator_version
    return {"format": FORMAT, "physics": physics, "generator_version": generator_version(physics),
            "data": {f: _file_digest(DATA / f) for f in NODE_DATA_FILES},
            "lsf_fwhm": FWHM_A, "normalise": "median", "n_pixels": grids.N_PIXELS,
            "nodes": {p: [float(LO[i]), float(STEP[i]), N_NODES[i]] for i, p in enumerate(PARAMS)}}


def lattice_key(identity: dict | None = None) -> str:
    doc = lattice_identity() if identity is None else identity
    digest = hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()[:16]
    return f"v{doc['generator_version']}-{digest}"


def lattice_root(workspace: str | Path | None = None) -> Path:
    """`<workspace>/cache/lattice`: the parent of every key's folder."""
    from engine.paths import workspace as ws_root
    return ws_root(workspace) / "cache" / "lattice"


def _segment_digest(nodes: np.ndarray, flux: np.ndarray) -> str:
    return hashlib.sha256(nodes.tobytes() + flux.tobytes()).hexdigest()


class NodeLattice:
    """Node spectra by flat node number, backed by a folder (or memory only, `root=None`).

    `ensure(nodes, synth)` synthesises (and stores) the missing ones; `rows(nodes)` maps
    node numbers to rows of `flux`, the one (n_stored, 4096) float32 array they live in.
    `read_only`: a reader (calibration) that never changes the folder — no temporary-file
    cleanup, a failing segment is skipped (listed in `discarded`) but not deleted, and
    `ensure` refuses to write."""

    def __init__(self, root: str | Path | None, *, key: str | None = None,
                 segment_nodes: int = SEGMENT_NODES, callbacks: Callbacks | None = None,
                 read_only: bool = False):
        self.identity = lattice_identity()
        self.key = key or lattice_key(self.identity)
        self.dir = None if root is None else Path(root) / self.key
        self.segment_nodes = int(segment_nodes)
        self.row_of = np.full(N_TOTAL, -1, np.int64)
        self.flux = np.empty((0, self.identity["n_pixels"]), np.float32)
        self.synthesised = 0            # nodes this object synthesised (not read from disk)
        self.discarded: list[str] = []  # segments that failed verification (deleted)
        self.read_only = bool(read_only)
        if self.dir is not None and self.dir.exists():
            self._load(callbacks)

    # -- reading ---------------------------------------------------------------------
    def _load(self, callbacks) -> None:
        if not self.read_only:
            self._remove_dead_temps(callbacks)
        blocks, rows = [], 0
        for path in sorted(self.dir.glob("seg-*.npz")):
            try:
                nodes, flux = self._read_segment(path)
            except DataError as exc:
                self.discarded.append(path.name)
                if self.read_only:
                    emit(callbacks, "log", message=f"lattice: skipped {path.name}, it failed "
                         f"verification ({exc.message})")
                    continue
                emit(callbacks, "log", message=f"lattice: deleted {path.name}, it failed "
                     f"verification ({exc.message}); its nodes will be synthesised again")
                path.unlink(missing_ok=True)
                continue
            new = self.row_of[nodes] < 0
            self.row_of[nodes[new]] = rows + np.arange(int(new.sum()))
            blocks.append(flux[new])
            rows += int(new.sum())
        if blocks:
            self.flux = np.concatenate(blocks)

    def _read_segment(self, path: Path) -> tuple[np.ndarray, np.ndarray]:
        """Verified (nodes, flux) of one segment, or DataError saying what is wrong."""
        def bad(why: str) -> DataError:
            return DataError(why, path=path, key="lattice segment",
                             hint="it is deleted and rebuilt; `logg-engine data lattice "
                                  "clear` removes the whole lattice")
        try:
            with np.load(path, allow_pickle=False) as z:
                nodes, flux = z["nodes"], z["flux"]
                key, digest = str(z["key"]), str(z["digest"])
        except Exception as exc:  # noqa: BLE001 — a torn/foreign file is one kind of bad
            raise bad(f"unreadable ({type(exc).__name__}: {exc})") from None
        if key != self.key:
            raise bad(f"belongs to lattice {key}, not {self.key}")
        n_pix = self.identity["n_pixels"]
        if nodes.dtype != np.int64 or nodes.ndim != 1 or flux.dtype != np.float32 \
                or flux.shape != (len(nodes), n_pix):
            raise bad(f"shape/dtype {nodes.dtype}{nodes.shape} {flux.dtype}{flux.shape}, "
                      f"expected int64 (n,) and float32 (n, {n_pix})")
        if len(nodes) and (nodes.min() < 0 or nodes.max() >= N_TOTAL):
            raise bad("node numbers outside the lattice")
        if not np.isfinite(flux).all():
            raise bad("non-finite flux")
        if _segment_digest(nodes, flux) != digest:
            raise bad("digest mismatch")
        return nodes, flux

    def _remove_dead_temps(self, callbacks) -> None:
        """Temporary segment files of writers that are gone (a killed build): deleted.
        A live writer's (another build sharing the lattice) are left alone."""
        from engine.atomic import is_temp_name
        for path in self.dir.iterdir():
            if not is_temp_name(path.name):
                continue
            try:
                pid = int(path.name.rsplit(".", 2)[-2].split("-")[0])
            except (ValueError, IndexError):
                pid = -1
            if pid != os.getpid() and (pid < 0 or not pid_alive(pid)):
                path.unlink(missing_ok=True)
                emit(callbacks, "log", message=f"lattice: removed {path.name} (left by a "
                     "killed build)")

    @property
    def n_stored(self) -> int:
        return int((self.row_of >= 0).sum())

    def missing(self, nodes: np.ndarray) -> np.ndarray:
        nodes = np.unique(np.asarray(nodes, np.int64).ravel())
        return nodes[self.row_of[nodes] < 0]

    def rows(self, nodes: np.ndarray) -> np.ndarray:
        """Rows of `flux` for node numbers (any shape); every node must be present."""
        r = self.row_of[np.asarray(nodes, np.int64)]
        if (r < 0).any():
            raise KeyError("nodes not in the lattice (call ensure first)")
        return r

    # -- writing ---------------------------------------------------------------------
    def ensure(self, nodes: np.ndarray, synth, callbacks: Callbacks | None = None) -> int:
        """Synthesise and store the nodes of `nodes` that are missing; returns how many.
        Progress: `start`/`progress` events in nodes (done, total, rate, eta_s)."""
        todo = self.missing(nodes)
        if not len(todo):
            return 0
        if self.read_only:
            raise DataError(f"{len(todo)} node spectra are missing from a lattice opened "
                            "read-only", path=self.dir, key="lattice",
                            hint="build them with `logg-engine data lattice build`")
        self._check_space(len(todo))
        emit(callbacks, "start", total=len(todo), unit="nodes", what="node lattice")
        emit(callbacks, "log", message=f"lattice: synthesising {len(todo)} node spectra "
             f"({self.n_stored} of {N_TOTAL} already stored"
             + (f" in {self.dir}" if self.dir else "") + ")")
        t0, blocks, done = time.time(), [], 0
        batch = max(1, getattr(synth, "batch", 64))
        try:
            for s in range(0, len(todo), self.segment_nodes):
                seg = todo[s:s + self.segment_nodes]
                parts = []
                for b in range(0, len(seg), batch):
                    parts.append(np.asarray(synth(node_theta(seg[b:b + batch])), np.float32))
                    done += len(parts[-1])
                    rate = done / max(time.time() - t0, 1e-9)
                    emit(callbacks, "progress", done=done, total=len(todo),
                         shard="node lattice", rate=rate, eta_s=(len(todo) - done) / rate)
                flux = np.concatenate(parts)
                if not np.isfinite(flux).all():
                    raise DataError("the forward model returned non-finite node spectra",
                                    key="lattice", hint="a bug in the v2 model: report it "
                                    f"with the nodes {seg[~np.isfinite(flux).all(1)][:5].tolist()}")
                self._write_segment(seg, flux)
                self.row_of[seg] = len(self.flux) + sum(len(x) for x in blocks) \
                    + np.arange(len(seg))
                blocks.append(flux)
        finally:  # what was written stays usable even when a later segment fails
            self.flux = np.concatenate([self.flux, *blocks])
        self.synthesised += len(todo)
        dt = time.time() - t0
        emit(callbacks, "log", message=f"lattice: synthesised {len(todo)} nodes in {dt:.0f} s "
             f"({len(todo) / max(dt, 1e-9):.1f} nodes/s); {self.n_stored} of {N_TOTAL} stored")
        return len(todo)

    def _check_space(self, n: int) -> None:
        if self.dir is None:
            return
        from engine.io.diskspace import fmt_bytes, free_bytes
        need = n * self.identity["n_pixels"] * 4 + 4096 * (n // self.segment_nodes + 2)
        free = free_bytes(self.dir)
        if need > free:
            raise DataError(f"not enough disk space for the node lattice: {n} node spectra "
                            f"need ~{fmt_bytes(need)}, {fmt_bytes(free)} is free",
                            path=self.dir, key="disk space",
                            hint="free disk space or point LOGG_WORKSPACE/--workspace at a "
                                 "bigger disk; nothing was written")

    def _write_segment(self, nodes: np.ndarray, flux: np.ndarray) -> None:
        if self.dir is None:
            return
        from engine.atomic import atomic_path, write_json
        from engine.io.diskspace import disk_full_error, is_disk_full
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
            if not (self.dir / "lattice.json").exists():
                write_json(self.dir / "lattice.json", {"key": self.key, **self.identity})
            name = f"seg-{int(nodes[0]):05d}-{time.time_ns():x}-{os.getpid()}.npz"
            nodes = np.ascontiguousarray(nodes, np.int64)
            with atomic_path(self.dir / name) as tmp, open(tmp, "wb") as fh:
                np.savez(fh, nodes=nodes, flux=flux, key=np.str_(self.key),
                         digest=np.str_(_segment_digest(nodes, flux)))
        except OSError as exc:
            if is_disk_full(exc):
                raise disk_full_error(self.dir, needed=flux.nbytes,
                                      what="writing the node lattice") from None
            raise


def lattice_status(root: Path) -> dict:
    """What is under `<workspace>/cache/lattice`: the current key's nodes and bytes, and
    any other (stale) keys with their bytes."""
    key = lattice_key()
    out = {"root": str(root), "key": key, "nodes_total": N_TOTAL, "nodes_stored": 0,
           "bytes": 0, "segments": 0, "discarded": [], "other_keys": {}}
    if not root.exists():
        return out
    for d in sorted(p for p in root.iterdir() if p.is_dir()):
        size = sum(f.stat().st_size for f in d.iterdir() if f.is_file())
        if d.name == key:
            lat = NodeLattice(root, key=key)
            out.update(nodes_stored=lat.n_stored, bytes=size, discarded=lat.discarded,
                       segments=len(list(d.glob("seg-*.npz"))))
        else:
            out["other_keys"][d.name] = size
    return out


def clear_lattice(root: Path, *, all_keys: bool = False) -> list[str]:
    """Delete the current key's folder (or every key's, `all_keys`); returns the names."""
    if not root.exists():
        return []
    key = lattice_key()
    gone = []
    for d in sorted(p for p in root.iterdir() if p.is_dir()):
        if all_keys or d.name == key:
            shutil.rmtree(d)
            gone.append(d.name)
    return gone
