"""The dataset builder: presets → pfsspec-layout shards + manifest, resumable.

Each shard is a pure function of (seed, shard name, generator version): its labels,
observing conditions, k factors and frozen test noise come from an RNG seeded with both,
so shards can be rebuilt, resumed or generated in any order with identical results.

Nothing that looks finished before it is (issue 11 item 7): the bytes a build needs are
estimated and checked against the free disk space before anything is written; each shard
is written to `dataset.h5.partial` with checkpoints (engine.io.shard_writer), verified,
and only then renamed to `dataset.h5`; a resume re-verifies every shard it skips and
continues a partial shard from its last checkpoint; `.building.json` marks an unfinished
build and the manifest `dataset.json` is written (atomically) only when every shard is
in place. A full disk is one DataError, with the temporary files removed.

A snapped v2 build (`--physics lte`, `bosz-1m`) first synthesises every node its shards
need into the workspace's persistent node lattice (engine.generator.lte.node_store, its
own progress in nodes) and then interpolates its rows from it (lte.lattice). Its CRLB
columns come from the exact jacfwd model at θ (`crlb_method="exact"`) or from the
lattice's own grid Jacobian (`"lattice"`, lte/lattice_fisher.py: the research's protocol,
~2 ms per row); the method is part of the build's identity."""

from __future__ import annotations

import hashlib
import json
import time
import zlib
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from engine.errors import EngineError, SpecError
from engine.events import Callbacks, emit
from engine.generator.noise import NoiseConfig, draw_k, error_from_flux
from engine.generator.presets import Preset, ShardSpec, get_preset, with_train_size
from engine.generator.priors import sample_labels, sample_observing
from engine.generator.synth import PARAMS
from engine.io.dataset import BUILDING

GENERATOR_VERSION = "1.0"   # of the default physics; engine.generator.physics has both
NOISE_LEVEL = 1.0
FROZEN_NOISE_SEED = 42      # the research froze test noise with seed 42 (engine.io default)
CRLB_CHECKPOINT_ROWS = 64   # ~25 s of CRLB at 2.7/s: the CRLB pass's resume unit
# --compile auto: a v2 CRLB pass of at least this many rows compiles the Jacobian's
# line-transfer stage (~30 s once per process, then ~2× faster: pays off from ~200 rows)
CRLB_COMPILE_MIN_ROWS = 1000
CRLB_METHODS = ("exact", "lattice")
# the CRLB method of a lattice build when none is given (docs/generator-v2.md, "CRLB from
# the lattice": measured against exact in bench/results/lattice_crlb.json)
LATTICE_BUILD_CRLB = "lattice"


def default_crlb_method(physics: str, snap: bool) -> str:
    """`lattice` for a lattice build (lte + snapped preset), else `exact`."""
    return LATTICE_BUILD_CRLB if (physics == "lte" and snap) else "exact"


@dataclass(frozen=True)
class BuildConfig:
    """Everything that defines a build (validated at the CLI edge)."""

    preset: Preset
    out: Path
    seed: int = 0
    name: str = ""
    crlb: bool = True            # compute crlb_* for shards whose spec asks for it
    compile: str = "auto"        # "auto" | "on" | "off": torch.compile the forward model
    batch: int = 64
    noise: NoiseConfig = field(default_factory=NoiseConfig)
    keep_free: int = 0           # bytes the build must leave free on the disk
    checkpoint_rows: int = 4096  # rows between checkpoints inside a shard (resume unit)
    physics: str = "me"          # "me" (v1, default) | "lte" (v2): engine.generator.physics
    lattice_root: Path | None = None  # persistent node lattice (lte + snap); None: in memory
    crlb_method: str = "exact"   # "exact" (jacfwd at θ) | "lattice" (lte + snap only)
    # where the synthesis and the exact CRLB compute (engine.devices: cpu, cuda, cuda:N,
    # auto). Not part of the signature: a build may resume on another device (the manifest
    # records the device that finished it)
    device: str = "cpu"

    @property
    def version(self) -> str:
        from engine.generator.physics import generator_version

        return generator_version(self.physics)

    def signature(self) -> dict:
        """What must match for a resume to reuse finished shards. The CRLB method is in it
        when it is not `exact` (builds from before the option were exact and keep their
        signature, so they still resume)."""
        sig = {"preset": self.preset.name, "seed": self.seed, "version": self.version,
               "snap": self.preset.snap, "noise": asdict(self.noise),
               "plan": {s.name: s.rows for s in self.preset.shards}}
        if self.crlb_method != "exact":
            sig["crlb_method"] = self.crlb_method
        return sig


def shard_rng(seed: int, name: str) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([int(seed) & 0xFFFFFFFF,
                                                         zlib.crc32(name.encode())]))


def build_dataset(preset: str | Preset = "default", *, out: str | Path | None = None,
                  seed: int = 0, size: int | None = None, name: str | None = None,
                  crlb: bool = True, compile: str = "auto", batch: int = 64,
                  noise: NoiseConfig | None = None, callbacks: Callbacks | None = None,
                  workspace: str | Path | None = None, keep_free: int = 0,
                  checkpoint_rows: int = 4096, physics: str = "me",
                  crlb_method: str | None = None, device: str = "cpu") -> Path:
    """Build (or resume) a dataset; returns its root folder.

    out default: `<workspace>/datasets/<name or preset>/`. keep_free: bytes the build must
    leave free (checked before writing). checkpoint_rows: resume granularity in a shard.
    physics: "me" (generator 1.0, default) or "lte" (2.x; engine.generator.physics).
    crlb_method: "exact" | "lattice" (lattice builds only); None: default_crlb_method.
    device: where synthesis and the exact CRLB run (engine.devices names)."""
    from engine.generator.physics import check_physics
    from engine.paths import datasets_dir, workspace as ws_root
    p = get_preset(preset) if isinstance(preset, str) else preset
    if size is not None:
        p = with_train_size(p, int(size))
    ds_name = name or p.name
    root = Path(out) if out is not None else datasets_dir(ws_root(workspace)) / ds_name
    from engine.generator.lte.node_store import lattice_root
    physics = check_physics(physics)
    method = default_crlb_method(physics, p.snap) if crlb_method is None else crlb_method
    cfg = BuildConfig(p, root, int(seed), ds_name, crlb, compile, int(batch),
                      noise or NoiseConfig(), int(keep_free), int(checkpoint_rows),
                      physics, lattice_root(workspace), method, str(device))
    return Builder(cfg).run(callbacks)


class Builder:
    def __init__(self, cfg: BuildConfig) -> None:
        if cfg.compile not in ("auto", "on", "off"):
            raise SpecError(f"compile must be auto|on|off, not {cfg.compile!r}", key="compile")
        if cfg.batch < 1:
            raise SpecError("batch must be ≥ 1", key="batch")
        if cfg.checkpoint_rows < 1:
            raise SpecError("checkpoint_rows must be ≥ 1", key="checkpoint_rows")
        if cfg.crlb_method not in CRLB_METHODS:
            raise SpecError(f"unknown CRLB method {cfg.crlb_method!r}", key="crlb-method",
                            hint="use exact or lattice (docs/generator-v2.md)")
        if cfg.crlb_method == "lattice" and not (cfg.physics == "lte" and cfg.preset.snap):
            raise SpecError("--crlb-method lattice needs a lattice build: --physics lte and "
                            f"a snapped preset (bosz-1m); this build is --physics "
                            f"{cfg.physics}, preset {cfg.preset.name} "
                            f"({'snapped' if cfg.preset.snap else 'not snapped'})",
                            key="crlb-method", hint="use --crlb-method exact, or build "
                            "--physics lte --preset bosz-1m")
        from engine.devices import resolve_device
        self.device = resolve_device(cfg.device)       # a missing GPU: SpecError, no work
        self.cfg = cfg
        self.root = Path(cfg.out)
        self._synth = None

    # -- manifest ------------------------------------------------------------------
    def _check_existing(self) -> None:
        """Refuse to resume into a folder that holds a different build."""
        for fname in (BUILDING, "dataset.json"):
            path = self.root / fname
            if not path.exists():
                continue
            try:
                old = json.loads(path.read_text()).get("build", {})
            except (OSError, ValueError, AttributeError):
                old = {}
            if old and old != self.cfg.signature():
                raise SpecError("a different dataset already exists in this folder",
                                path=self.root, key=fname,
                                hint="use --name/--out for a new folder, or delete the old one")

    def _write_manifest(self, done: dict[str, int]) -> None:
        from engine.devices import describe
        from engine.io.dataset import write_manifest
        from engine.generator.lsf import FWHM_A
        if self.cfg.physics == "lte":      # v2 reads its own list (data/linelist_lte.csv)
            from engine.generator.lte.linelist import load_linelist
        else:
            from engine.generator.linelist import load_linelist
        write_manifest(self.root, name=self.cfg.name, preset=self.cfg.preset.name,
                       seed=self.cfg.seed, noise_level=NOISE_LEVEL, shards=done,
                       extra={"generator_version": self.cfg.version, "complete": True,
                              "crlb_method": self.cfg.crlb_method,
                              "build": self.cfg.signature(),
                              "generator": {"n_lines": len(load_linelist()), "lsf_fwhm": FWHM_A,
                                            "frozen_noise_seed": FROZEN_NOISE_SEED,
                                            "physics": self.cfg.physics,
                                            "device": describe(self.device)}})

    def _mark_building(self) -> None:
        """`.building.json` says "unfinished" to readers (engine.io.dataset refuses such a
        folder) and holds the signature a resume must match; the old manifest goes."""
        from engine.atomic import write_json
        write_json(self.root / BUILDING, {"build": self.cfg.signature()}, safe=False)
        (self.root / "dataset.json").unlink(missing_ok=True)

    # -- run -------------------------------------------------------------------------
    def run(self, callbacks: Callbacks | None = None) -> Path:
        from engine.io.diskspace import disk_full_error, is_disk_full
        created = not self.root.exists()
        self.root.mkdir(parents=True, exist_ok=True)
        self._check_existing()
        shards = self.cfg.preset.shards
        todo = [s for s in shards if not self._verified(s, callbacks)]
        if todo or not (self.root / "dataset.json").exists():
            try:
                self._preflight(todo, callbacks)
            except EngineError:
                if created:  # leave no empty folder behind a refused build
                    self.root.rmdir()
                raise
            try:
                self._mark_building()
            except OSError as exc:
                if is_disk_full(exc):
                    raise disk_full_error(self.root, what="starting the build") from None
                raise
        if todo and self._uses_lattice():
            self._prepare_lattice(todo, callbacks)
        units = sum(s.rows * (2 if (s.crlb and self.cfg.crlb) else 1) for s in todo)
        emit(callbacks, "start", total=units, unit="spectra", what=f"generate {self.cfg.name}")
        state = {"done": 0, "total": units, "t0": time.time()}
        for spec in todo:
            self._build_shard_safely(spec, callbacks, state)
        try:
            self._write_manifest({s.name: s.rows for s in shards})
        except OSError as exc:
            if is_disk_full(exc):
                raise disk_full_error(self.root, what="writing the manifest") from None
            raise
        (self.root / BUILDING).unlink(missing_ok=True)
        emit(callbacks, "end", status="finished", error=None)
        return self.root

    def _verified(self, spec: ShardSpec, callbacks) -> bool:
        """A finished shard counts only if it passes engine.io.shard_verify; one that
        fails is removed (with a message) so that it is rebuilt."""
        from engine.errors import DataError
        from engine.io.shard_verify import verify_shard
        path = self.root / spec.name / "dataset.h5"
        if not path.exists():
            return False
        try:
            info = verify_shard(path, rows=spec.rows, arrays=self._arrays(spec),
                                require_record=False)
        except DataError as exc:
            emit(callbacks, "log", message=f"rebuild {spec.name}: it failed verification "
                 f"({exc.message})")
            path.unlink()
            return False
        from engine.io.shard_writer import discard_partial
        discard_partial(path)  # a kill between rename and cleanup leaves a stale progress file
        how = "verified" if info["checksummed"] else "checked, no checksum (older build)"
        emit(callbacks, "log", message=f"skip {spec.name} (already built, {how})")
        return True

    def _preflight(self, todo: list[ShardSpec], callbacks) -> None:
        """Refuse before writing anything when the disk is too small; say how much the
        build writes either way. Partial shards already hold their reserved bytes."""
        from engine.errors import DataError
        from engine.generator import grids
        from engine.io.diskspace import MANIFEST_BYTES, fmt_bytes, free_bytes, shard_bytes
        from engine.io.shard_writer import partial_path, partial_rows
        n_pix = grids.wave().size
        total = sum(shard_bytes(s.rows, n_pix, len(self._arrays(s))) for s in todo)
        parts = [partial_path(self.root / s.name / "dataset.h5") for s in todo]
        held = sum(p.stat().st_size for p in parts if p.exists())
        resumed = sum(min(partial_rows(p.with_name("dataset.h5")), s.rows)
                      for p, s in zip(parts, todo) if p.exists())
        need = max(0, total - held) + MANIFEST_BYTES
        free = free_bytes(self.root) - self.cfg.keep_free
        rows = sum(s.rows for s in todo) - resumed
        emit(callbacks, "log", message=f"will write {rows} spectra, ~{fmt_bytes(need)} to "
             f"{self.root} ({fmt_bytes(max(free, 0))} free"
             + (f" after keeping {fmt_bytes(self.cfg.keep_free)}" if self.cfg.keep_free else "")
             + ")" + (f"; {resumed} rows already in partial shards" if resumed else ""))
        if need > free:
            raise DataError(f"not enough disk space: the build needs ~{fmt_bytes(need)} "
                            f"({need} bytes) but {fmt_bytes(max(free, 0))} ({max(free, 0)} "
                            "bytes) is free" + (" after --keep-free" if self.cfg.keep_free
                                                else ""), path=self.root, key="disk space",
                            hint="free disk space, pass --out on a bigger disk, or build "
                                 "fewer rows (--size); nothing was written")

    @staticmethod
    def _arrays(spec: ShardSpec) -> tuple[str, ...]:
        """The float arrays a shard writes (the mask exists but is never written)."""
        return ("flux", "error") + (("noisy",) if spec.noisy else ())

    def _uses_lattice(self) -> bool:
        return self.cfg.physics == "lte" and self.cfg.preset.snap

    def _prepare_lattice(self, todo: list[ShardSpec], callbacks) -> None:
        """Synthesise every node the shards still to build need, before any row is
        written (its own progress bar in nodes; the workspace's lattice keeps them for
        every later build). θ per shard is the shard RNG's first draw, as in _build_shard.
        With `crlb_method="lattice"` also the grid neighbours the CRLB shards' Jacobians
        read (lattice_fisher.jacobian_nodes)."""
        draws = {s.name: sample_labels(shard_rng(self.cfg.seed, s.name), s.rows, snap=True)[0]
                 for s in todo}
        synth = self._synthesiser(sum(s.rows for s in self.cfg.preset.shards), callbacks)
        extra = None
        if self.cfg.crlb and self.cfg.crlb_method == "lattice":
            from engine.generator.lte.lattice_fisher import jacobian_nodes
            extra = [jacobian_nodes(draws[s.name]) for s in todo if s.crlb]
            extra = np.concatenate(extra) if extra else None
        synth.prepare(np.concatenate(list(draws.values())), callbacks, extra)

    def _synthesiser(self, rows_todo: int, callbacks=None):
        if self._synth is None:
            from engine.devices import describe
            from engine.generator.physics import synth_module
            use = self.cfg.compile == "on" or (self.cfg.compile == "auto" and rows_todo >= 20000)
            def make():
                synth = synth_module(self.cfg.physics).BatchSynth(self.cfg.batch, compile=use,
                                                                  device=self.device)
                emit(callbacks, "log", message=f"forward model ({self.cfg.physics}) on "
                     f"{describe(self.device)}: "
                     + ("torch.compile'd" if synth.compiled else "eager" + (
                        " (torch.compile failed; same numbers, slower)" if use else "")))
                return synth
            if self._uses_lattice():  # node lattice + spline (engine.generator.lte.lattice)
                from engine.generator.lte.lattice import LatticeSynth
                from engine.generator.lte.node_store import NodeLattice
                self._synth = LatticeSynth(_LazySynth(make, self.cfg.batch),
                                           NodeLattice(self.cfg.lattice_root, callbacks=callbacks))
            else:
                self._synth = make()
        return self._synth

    def _build_shard_safely(self, spec: ShardSpec, callbacks, state) -> None:
        """Build one shard; a full disk becomes one DataError and the shard's temporary
        files go (an interrupt keeps them: the next run continues from the checkpoint)."""
        from engine.errors import DataError
        from engine.io.diskspace import disk_full_error, is_disk_full
        from engine.io.shard_writer import discard_partial
        path = self.root / spec.name / "dataset.h5"
        try:
            self._build_shard(spec, callbacks, state)
        except DataError:
            discard_partial(path)
            raise
        except Exception as exc:
            if is_disk_full(exc):
                discard_partial(path)
                from engine.generator import grids
                from engine.io.diskspace import shard_bytes
                need = shard_bytes(spec.rows, grids.wave().size, len(self._arrays(spec)))
                raise disk_full_error(path.parent, needed=need,
                                      what=f"writing shard {spec.name}") from None
            raise

    def _shard_key(self, spec: ShardSpec) -> str:
        doc = {"build": self.cfg.signature(), "shard": asdict(spec), "crlb": self.cfg.crlb}
        return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()[:16]

    def _build_shard(self, spec: ShardSpec, callbacks, state) -> None:
        from engine.io.shard_writer import ShardWriter
        from engine.generator import grids
        n = spec.rows
        rng = shard_rng(self.cfg.seed, spec.name)
        theta, interp = sample_labels(rng, n, snap=self.cfg.preset.snap)
        obs = sample_observing(rng, n)
        k = draw_k(rng, n, self.cfg.noise)
        wave = grids.wave()
        with_crlb = spec.crlb and self.cfg.crlb
        errors = np.empty((n, wave.size), np.float32) if with_crlb else None
        snr = np.empty((3, n))
        w = ShardWriter(self.root / spec.name / "dataset.h5", n_rows=n, wave=wave,
                        arrays=("flux", "error", "mask") + (("noisy",) if spec.noisy else ()),
                        wave_edges=grids.wave_edges(), key=self._shard_key(spec),
                        meta={"generator_version": self.cfg.version, "shard": spec.name})
        try:
            first = w.open()
            if w.discarded:
                emit(callbacks, "log", message=f"{spec.name}: discarded a partial file "
                     f"({w.discarded}); starting the shard again")
            if first:
                emit(callbacks, "log", message=f"resume {spec.name} at row {first} of {n}")
                self._reload(w, first, snr, errors)
            state["total"] -= first  # rows already on disk (the CRLB pass is redone)
            synth = self._synthesiser(sum(s.rows for s in self.cfg.preset.shards), callbacks)
            since = 0
            for s in range(first, n, self.cfg.batch):
                e = min(n, s + self.cfg.batch)
                flux = synth(theta[s:e])
                err = error_from_flux(flux, wave, obs["mag"][s:e], k[s:e],
                                      self.cfg.noise).astype(np.float32)
                snr[:, s:e] = _snrs(flux, err)
                noisy = _frozen_noisy(flux, err, spec.name, s) if spec.noisy else None
                w.write_rows(s, flux=flux, error=err, noisy=noisy)
                if errors is not None:
                    errors[s:e] = err
                since += e - s
                if since >= self.cfg.checkpoint_rows and e < n:
                    w.checkpoint(e)
                    since = 0
                _tick(callbacks, state, e - s, spec.name)
            if with_crlb and first < n:
                w.checkpoint(n)  # the rows are durable before the (long) CRLB pass starts
            crlb_cols = self._crlb(theta, errors, spec, callbacks, state, w) if with_crlb \
                else None
            w.finish(_params_table(theta, interp, obs, snr, crlb_cols, self.cfg.noise))
        finally:
            w.close()
        emit(callbacks, "log", message=f"{spec.name} written and verified ({n} rows)")

    @staticmethod
    def _reload(w, rows: int, snr: np.ndarray, errors: np.ndarray | None) -> None:
        """The per-row results a resumed shard needs from its checkpointed rows."""
        for s in range(0, rows, 4096):
            e = min(rows, s + 4096)
            flux, err = w.read_rows("flux", s, e), w.read_rows("error", s, e)
            snr[:, s:e] = _snrs(flux, err)
            if errors is not None:
                errors[s:e] = err

    def _fisher_model(self):
        if getattr(self, "_fisher", None) is None:
            from engine.generator.physics import fisher_model

            self._fisher = fisher_model(self.cfg.physics, self.device)
        return self._fisher

    def _crlb(self, theta, errors, spec, callbacks, state, w):
        """CRLB columns in chunks (16 rows exact, 256 lattice), checkpointed every
        `crlb_checkpoint` rows through the shard writer, so a resumed build continues the
        pass where it stopped."""
        from functools import partial
        n, chunk = len(theta), 16
        saved = w.load_side((2, n))
        out, first = saved if saved is not None else (np.empty((2, n)), 0)
        if self.cfg.crlb_method == "lattice":
            from engine.generator.lte import lattice_fisher
            lat = self._synthesiser(n, callbacks)
            lat.lattice.ensure(lattice_fisher.jacobian_nodes(theta), lat.synth, callbacks)
            crlb, chunk = partial(lattice_fisher.crlb, lattice=lat.lattice), 256
        else:
            from engine.generator.fisher import crlb as exact_crlb
            model = self._fisher_model()
            if hasattr(model, "compile_jacobian"):      # v2: compile pays off on long passes
                model.compile_jacobian = model.compile_jacobian or self.cfg.compile == "on" \
                    or (self.cfg.compile == "auto" and n - first >= CRLB_COMPILE_MIN_ROWS)
            crlb = partial(exact_crlb, model=model)
        if first:
            emit(callbacks, "log", message=f"resume {spec.name} crlb at row {first} of {n}")
            state["total"] -= first
        since = 0
        for s in range(first, n, chunk):
            r = crlb(theta[s:s + chunk], errors[s:s + chunk], noise_level=NOISE_LEVEL)
            out[0, s:s + chunk] = r.crlb_log_g
            out[1, s:s + chunk] = r.schur
            since += min(chunk, n - s)
            if since >= CRLB_CHECKPOINT_ROWS and s + chunk < n:
                w.save_side(out, s + chunk)
                since = 0
            _tick(callbacks, state, min(chunk, n - s), f"{spec.name} crlb")
        return out


class _LazySynth:
    """A BatchSynth made on first use: a build whose nodes are all in the lattice never
    pays for the model (nor its torch.compile)."""

    def __init__(self, make, batch: int) -> None:
        self.make, self.batch, self._synth = make, batch, None

    def __call__(self, theta: np.ndarray) -> np.ndarray:
        if self._synth is None:
            self._synth = self.make()
        return self._synth(theta)


def _tick(callbacks, state, n, what) -> None:
    state["done"] += n
    dt = max(time.time() - state["t0"], 1e-9)
    emit(callbacks, "progress", done=state["done"], total=state["total"], shard=what,
         rate=state["done"] / dt)


def _snrs(flux: np.ndarray, err: np.ndarray) -> np.ndarray:
    from engine.io.snr import snr_l2, snr_quantiles
    return np.stack([*snr_quantiles(flux, err, qs=(0.95, 0.5)), snr_l2(flux, err)])


def _frozen_noisy(flux, err, shard: str, start: int) -> np.ndarray:
    """The stored test noise: exactly engine.io's seeded realisation for this split
    (seed 42, stream = shard name), so `Split.noisy(1.0, seed=42)` reproduces it."""
    from engine.io.seeded_noise import add_noise, stream_id
    return add_noise(flux, err, NOISE_LEVEL, seed=FROZEN_NOISE_SEED, stream=stream_id(shard),
                     start=start)


def _params_table(theta, interp, obs, snr, crlb_cols, noise: NoiseConfig):
    from engine.io.columns import empty_params
    n = len(theta)
    df = empty_params(n)
    df["redshift"] = 0.0
    df["redshift_err"] = 0.0
    df["exp_count"] = np.int64(noise.n_exp)
    df["exp_time"] = noise.exp_time
    for col in ("seeing", "target_zenith_angle", "target_field_angle", "moon_zenith_angle",
                "moon_target_angle", "moon_phase", "mag"):
        df[col] = obs[col]
    for i, p in enumerate(PARAMS):
        df[p] = theta[:, i]
    df["interp_param"] = list(interp)
    df["snr"], df["snr_median"], df["snr_l2"] = snr
    if crlb_cols is not None:
        df["crlb_log_g"], df["crlb_schur"] = crlb_cols
    return df
