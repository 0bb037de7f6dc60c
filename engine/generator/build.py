"""The dataset builder: presets → pfsspec-layout shards + manifest, resumable.

Each shard is a pure function of (seed, shard name, generator version): its labels,
observing conditions, k factors and frozen test noise come from an RNG seeded with both,
so shards can be rebuilt, resumed or generated in any order with identical results. A
shard file appears only when complete (engine.io's writer renames a temporary file), so
an interrupted build resumes by skipping the shard files that exist. The manifest
`dataset.json` is rewritten atomically after every shard."""

from __future__ import annotations

import json
import time
import zlib
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from engine.errors import SpecError
from engine.events import Callbacks, emit
from engine.generator.noise import NoiseConfig, draw_k, error_from_flux
from engine.generator.presets import Preset, ShardSpec, get_preset, with_train_size
from engine.generator.priors import sample_labels, sample_observing
from engine.generator.synth import PARAMS

GENERATOR_VERSION = "1.0"
NOISE_LEVEL = 1.0
FROZEN_NOISE_SEED = 42      # the research froze test noise with seed 42 (engine.io default)


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

    def signature(self) -> dict:
        """What must match for a resume to reuse finished shards."""
        return {"preset": self.preset.name, "seed": self.seed, "version": GENERATOR_VERSION,
                "snap": self.preset.snap, "noise": asdict(self.noise),
                "plan": {s.name: s.rows for s in self.preset.shards}}


def shard_rng(seed: int, name: str) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([int(seed) & 0xFFFFFFFF,
                                                         zlib.crc32(name.encode())]))


def build_dataset(preset: str | Preset = "default", *, out: str | Path | None = None,
                  seed: int = 0, size: int | None = None, name: str | None = None,
                  crlb: bool = True, compile: str = "auto", batch: int = 64,
                  noise: NoiseConfig | None = None, callbacks: Callbacks | None = None,
                  workspace: str | Path | None = None) -> Path:
    """Build (or resume) a dataset; returns its root folder.

    out default: `<workspace>/datasets/<name or preset>/`."""
    from engine.paths import datasets_dir, workspace as ws_root
    p = get_preset(preset) if isinstance(preset, str) else preset
    if size is not None:
        p = with_train_size(p, int(size))
    ds_name = name or p.name
    root = Path(out) if out is not None else datasets_dir(ws_root(workspace)) / ds_name
    cfg = BuildConfig(p, root, int(seed), ds_name, crlb, compile, int(batch),
                      noise or NoiseConfig())
    return Builder(cfg).run(callbacks)


class Builder:
    def __init__(self, cfg: BuildConfig) -> None:
        if cfg.compile not in ("auto", "on", "off"):
            raise SpecError(f"compile must be auto|on|off, not {cfg.compile!r}", key="compile")
        if cfg.batch < 1:
            raise SpecError("batch must be ≥ 1", key="batch")
        self.cfg = cfg
        self.root = Path(cfg.out)
        self._synth = None

    # -- manifest ------------------------------------------------------------------
    def _check_existing(self) -> None:
        path = self.root / "dataset.json"
        if not path.exists():
            return
        try:
            old = json.loads(path.read_text()).get("build", {})
        except (OSError, ValueError):
            old = {}
        if old and old != self.cfg.signature():
            raise SpecError("a different dataset already exists in this folder",
                            path=self.root, key="dataset.json",
                            hint="use --name/--out for a new folder, or delete the old one")

    def _write_manifest(self, done: dict[str, int], complete: bool) -> None:
        from engine.io.dataset import write_manifest
        from engine.generator.linelist import load_linelist
        from engine.generator.lsf import FWHM_A
        write_manifest(self.root, name=self.cfg.name, preset=self.cfg.preset.name,
                       seed=self.cfg.seed, noise_level=NOISE_LEVEL, shards=done,
                       extra={"generator_version": GENERATOR_VERSION, "complete": complete,
                              "build": self.cfg.signature(),
                              "generator": {"n_lines": len(load_linelist()), "lsf_fwhm": FWHM_A,
                                            "frozen_noise_seed": FROZEN_NOISE_SEED}})

    # -- run -------------------------------------------------------------------------
    def run(self, callbacks: Callbacks | None = None) -> Path:
        self.root.mkdir(parents=True, exist_ok=True)
        self._check_existing()
        shards = self.cfg.preset.shards
        done = {s.name: s.rows for s in shards if (self.root / s.name / "dataset.h5").exists()}
        todo = [s for s in shards if s.name not in done]
        for s in shards:
            if s.name in done:
                emit(callbacks, "log", message=f"skip {s.name} (already built)")
        units = sum(s.rows * (2 if (s.crlb and self.cfg.crlb) else 1) for s in todo)
        emit(callbacks, "start", total=units, unit="spectra", what=f"generate {self.cfg.name}")
        self._write_manifest(done, complete=not todo)
        state = {"done": 0, "total": units, "t0": time.time()}
        for spec in todo:
            self._build_shard(spec, callbacks, state)
            done[spec.name] = spec.rows
            self._write_manifest({s.name: done[s.name] for s in shards if s.name in done},
                                 complete=len(done) == len(shards))
        emit(callbacks, "end", status="finished", error=None)
        return self.root

    def _synthesiser(self, rows_todo: int):
        if self._synth is None:
            from engine.generator.synth import BatchSynth
            use = self.cfg.compile == "on" or (self.cfg.compile == "auto" and rows_todo >= 20000)
            self._synth = BatchSynth(self.cfg.batch, compile=use)
        return self._synth

    def _build_shard(self, spec: ShardSpec, callbacks, state) -> None:
        from engine.io.pfsspec import SpectrumWriter
        from engine.generator import grids
        n = spec.rows
        rng = shard_rng(self.cfg.seed, spec.name)
        theta, interp = sample_labels(rng, n, snap=self.cfg.preset.snap)
        obs = sample_observing(rng, n)
        k = draw_k(rng, n, self.cfg.noise)
        wave = grids.wave()
        synth = self._synthesiser(sum(s.rows for s in self.cfg.preset.shards))
        with_crlb = spec.crlb and self.cfg.crlb
        errors = np.empty((n, wave.size), np.float32) if with_crlb else None
        snr = np.empty((3, n))
        arrays = ("flux", "error", "mask") + (("noisy",) if spec.noisy else ())
        with SpectrumWriter(self.root / spec.name / "dataset.h5", n_rows=n, wave=wave,
                            arrays=arrays, wave_edges=grids.wave_edges()) as w:
            for s in range(0, n, self.cfg.batch):
                e = min(n, s + self.cfg.batch)
                flux = synth(theta[s:e])
                err = error_from_flux(flux, wave, obs["mag"][s:e], k[s:e],
                                      self.cfg.noise).astype(np.float32)
                snr[:, s:e] = _snrs(flux, err)
                noisy = _frozen_noisy(flux, err, spec.name, s) if spec.noisy else None
                w.write_rows(s, flux=flux, error=err, noisy=noisy)
                if errors is not None:
                    errors[s:e] = err
                _tick(callbacks, state, e - s, spec.name)
            crlb_cols = self._crlb(theta, errors, spec, callbacks, state) if with_crlb else None
            w.set_params(_params_table(theta, interp, obs, snr, crlb_cols, self.cfg.noise))

    def _crlb(self, theta, errors, spec, callbacks, state):
        from engine.generator.fisher import crlb
        out = np.empty((2, len(theta)))
        chunk = 16
        for s in range(0, len(theta), chunk):
            r = crlb(theta[s:s + chunk], errors[s:s + chunk], noise_level=NOISE_LEVEL)
            out[0, s:s + chunk] = r.crlb_log_g
            out[1, s:s + chunk] = r.schur
            _tick(callbacks, state, min(chunk, len(theta) - s), f"{spec.name} crlb")
        return out


def _tick(callbacks, state, n, what) -> None:
    state["done"] += n
    dt = max(time.time() - state["t0"], 1e-9)
    emit(callbacks, "progress", done=state["done"], total=state["total"], shard=what,
         rate=state["done"] / dt)


def _snrs(flux: np.ndarray, err: np.ndarray) -> np.ndarray:
    from engine.io.snr import snr_l2, snr_median, snr_pfsspec
    return np.stack([snr_pfsspec(flux, err), snr_median(flux, err), snr_l2(flux, err)])


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
