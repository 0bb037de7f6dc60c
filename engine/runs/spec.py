"""RunSpec: the validated, frozen description of one run, built at the edge (CLI / TUI)
and the only thing passed inward (to the run folder, the worker and the runner).

Why here and typed: the research lost track of which α, which split and which noise a
number came from (docs/dev-contracts.md, research pitfalls 1–2). Every hyper-parameter is
resolved (preset values overridden by ``--set key=value``, each parsed to the preset
value's type) before the run starts and is written to run.json with a config hash."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from engine.errors import DataError, SpecError

if TYPE_CHECKING:
    from engine.io.dataset import Dataset

EXECUTORS = ("local", "ray")  # ray: engine.runs.ray.executor (a teammate's)
DEFAULT_DATASET = "default"


@dataclass(frozen=True)
class RunSpec:
    """One run. ``params`` are the resolved hyper-parameters (read-only mapping)."""

    model: str
    preset: str
    params: Mapping[str, Any]
    dataset: str                      # name or path, as the user gave it
    dataset_path: str                 # the resolved dataset folder (absolute)
    train_size: int
    noise_level: float = 1.0
    seed: int = 0
    test_split: str = "test"
    val_split: str | None = "val"
    device: str = "auto"
    executor: str = "local"
    workers: int = 1                  # data-parallel training workers (Ray Train); 1 = one process
    ray_address: str | None = None    # the Ray cluster distributed training joins (None: local)
    augment_copies: int | None = None  # K seeded noise realisations of the training rows
    #                                    (None: the model takes no copies, see RUN_OPTIONS)

    def __post_init__(self) -> None:
        object.__setattr__(self, "params", MappingProxyType(dict(self.params)))
        if not self.model:
            raise SpecError("empty model name", key="model")
        if int(self.train_size) <= 0:
            raise SpecError(f"train_size must be > 0, got {self.train_size}", key="size")
        if not float(self.noise_level) > 0:
            raise SpecError(f"noise_level must be > 0, got {self.noise_level}",
                            key="noise_level", hint="1.0 = nominal PFS noise")
        if self.executor not in EXECUTORS:
            raise SpecError(f"unknown executor {self.executor!r}", key="executor",
                            hint=f"use one of: {', '.join(EXECUTORS)}")
        if not self.test_split:
            raise SpecError("empty test split", key="test_split")
        if int(self.workers) < 1:
            raise SpecError(f"workers must be >= 1, got {self.workers}", key="workers",
                            hint="1 = single process; N > 1 = data-parallel via Ray Train")
        if self.augment_copies is not None and int(self.augment_copies) < 1:
            raise SpecError(f"augment_copies must be >= 1, got {self.augment_copies}",
                            key="augment_copies", hint="1 = one noise realisation")

    def config_hash(self) -> str:
        """16 hex of sha256 over the model, its resolved hyper-parameters and the run
        options that shape the fit (augment_copies): two runs with the same hash trained
        the same model the same way (data keyed separately). The options are hashed as
        if they were parameters, so hashes match those of runs made before they moved
        out of the presets."""
        doc = json.dumps({"model": self.model, "params": {**self.params, **self.options()}},
                         sort_keys=True, default=str)
        return hashlib.sha256(doc.encode()).hexdigest()[:16]

    def options(self) -> dict[str, Any]:
        """The run options this model takes (RUN_OPTIONS that are not None)."""
        return {k: getattr(self, k) for k in RUN_OPTIONS if getattr(self, k) is not None}

    def to_json(self) -> dict[str, Any]:
        d = {k: getattr(self, k) for k in _FIELDS}
        d["params"] = dict(self.params)
        return d

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> RunSpec:
        """The spec of a run.json; one written before the run options left the presets
        has them among its params and is read as if written today."""
        fields = {k: data[k] for k in _FIELDS if k in data}
        params = dict(fields.get("params") or {})
        for key in RUN_OPTIONS:
            if key in params and key not in fields:
                fields[key] = params.pop(key)
        return cls(**{**fields, "params": params})


_FIELDS = ("model", "preset", "params", "dataset", "dataset_path", "train_size",
           "noise_level", "seed", "test_split", "val_split", "device", "executor",
           "workers", "ray_address", "augment_copies")
# Run options a user may still give as `--set key=value`: they shape the training data,
# not the estimator, so they live on the spec (and reach the adapter in its TrainContext).
# Value: the adapter flag that says the model takes the option.
RUN_OPTIONS = {"augment_copies": "augments"}


# --------------------------------------------------------------------------- building
def build_spec(model: str, *, workspace: str | Path, size: str | int,
               dataset: str | None = None, preset: str | None = None,
               overrides: Sequence[str] = (), noise_level: float = 1.0, seed: int = 0,
               test_split: str = "test", val_split: str | None = "val",
               device: str = "auto", executor: str = "local", workers: int = 1,
               ray_address: str | None = None) -> RunSpec:
    """Validate user input and resolve it into a RunSpec. Every bad input is a
    SpecError (exit 2) naming the field and the fix, data problems included."""
    from engine.io.dataset import parse_size
    from engine.runs.registry import get_adapter

    adapter = get_adapter(model)
    if int(workers) > 1 and not getattr(adapter, "distributed", False):
        raise SpecError(f"model {model!r} has no data-parallel training", key="workers",
                        hint="--workers > 1 works for vit (Ray Train TorchTrainer) and lgbm "
                        "(Ray Train LightGBM); drop --workers for this model")
    preset = preset or next(iter(adapter.presets))
    options, overrides = run_options(model, adapter, overrides)
    params = resolve_params(model, adapter.presets, preset, overrides,
                            getattr(adapter, "options", None))
    n = parse_size(size)
    ds = _open_dataset(dataset or DEFAULT_DATASET, workspace)
    try:
        _check_splits(ds, n, test_split, val_split)
        return RunSpec(model=model, preset=preset, params=params,
                       dataset=str(dataset or DEFAULT_DATASET), dataset_path=str(ds.root),
                       train_size=n, noise_level=float(noise_level), seed=int(seed),
                       test_split=test_split, val_split=val_split or None, device=device,
                       executor=executor, workers=int(workers), ray_address=ray_address,
                       **options)
    finally:
        ds.close()


def run_options(model: str, adapter: Any, overrides: Sequence[str]
                ) -> tuple[dict[str, Any], list[str]]:
    """Split `--set` overrides into the run options the model takes (defaults filled in,
    e.g. augment_copies=1 for a model that augments) and the hyper-parameter overrides."""
    options = {k: 1 for k, flag in RUN_OPTIONS.items() if getattr(adapter, flag, False)}
    rest = []
    for item in overrides:
        key, sep, text = str(item).partition("=")
        key = key.strip()
        if not sep or key not in RUN_OPTIONS:
            rest.append(item)
            continue
        if key not in options:
            raise SpecError(f"model {model!r} takes no {key}", key=key,
                            hint=f"drop --set {key}: {model} does not train on augmented "
                                 "noise copies")
        options[key] = parse_value(key, text.strip(), options[key])
    return options, rest


def resolve_params(model: str, presets: Mapping[str, Mapping[str, Any]], preset: str,
                   overrides: Sequence[str], options: Mapping[str, Any] | None = None
                   ) -> dict[str, Any]:
    """Preset values overridden by ``key=value`` strings, each parsed to the type of the
    preset's value (lists element-wise, comma-separated). ``options``: run-control keys
    (name → example value) a ``--set`` may add although no preset lists them (the ViT's
    max_steps, val_rows, max_resident_gb); left out of the params when not set, so a run
    without them keeps its preset's config hash."""
    options = options or {}
    if preset not in presets:
        raise SpecError(f"unknown preset {preset!r} for model {model!r}", key="preset",
                        hint=f"use one of: {', '.join(presets)}")
    params = dict(presets[preset])
    for item in overrides:
        key, sep, text = str(item).partition("=")
        key = key.strip()
        if not sep or not key:
            raise SpecError(f"bad override {item!r}", key="set", hint="write --set key=value")
        if key not in params and key in options:
            params[key] = parse_value(key, text.strip(), options[key])
            continue
        if key not in params:
            raise SpecError(f"unknown parameter {key!r} for {model} preset {preset!r}",
                            key=key, hint=f"valid keys: {', '.join(sorted({*params, *options}))}")
        params[key] = parse_value(key, text.strip(), _type_example(presets, key))
    return params


def _type_example(presets: Mapping[str, Mapping[str, Any]], key: str) -> Any:
    """The value whose type an override must take: the first non-empty one any preset
    of the model gives for this key."""
    values = [p[key] for p in presets.values() if key in p]
    for v in values:
        if v is not None and v != [] and v != ():
            return v
    return values[0] if values else None


def parse_value(key: str, text: str, example: Any) -> Any:
    """Parse ``text`` to the type of ``example`` (bool, int, float, str, list)."""
    try:
        if isinstance(example, bool):
            low = text.lower()
            if low in ("1", "true", "yes", "on"):
                return True
            if low in ("0", "false", "no", "off"):
                return False
            raise ValueError(text)
        if isinstance(example, int):
            f = float(text)
            if f != int(f):
                raise ValueError(text)
            return int(f)
        if isinstance(example, float):
            return float(text)
        if isinstance(example, (list, tuple)):
            elem = example[0] if example else 0.0
            return [parse_value(key, t.strip(), elem) for t in text.split(",") if t.strip()]
        if example is None:
            return None if text.lower() in ("", "none", "null") else json.loads(text)
        return text
    except (ValueError, json.JSONDecodeError):
        kind = type(example).__name__ if not isinstance(example, (list, tuple)) \
            else f"comma-separated list of {type(example[0] if example else 0.0).__name__}"
        raise SpecError(f"bad value {text!r} for {key}: expected {kind}", key=key,
                        hint=f"e.g. --set {key}={_show(example)}") from None


def _show(v: Any) -> str:
    if isinstance(v, (list, tuple)):
        return ",".join(str(x) for x in v[:3])
    return str(v).lower() if isinstance(v, bool) else str(v)


def _open_dataset(name: str, workspace: str | Path) -> Dataset:
    """resolve_dataset, with its DataError turned into a SpecError (user input)."""
    from engine.io.dataset import resolve_dataset

    try:
        return resolve_dataset(name, workspace)
    except DataError as exc:
        raise SpecError(exc.message, path=exc.path, key="dataset", hint=exc.hint) from None


def _check_splits(ds: Any, n: int, test_split: str, val_split: str | None) -> None:
    """The training size fits and the named splits exist — checked before anything runs."""
    try:
        ds.train(n)
        ds.split(test_split)
        if val_split:
            ds.split(val_split)
    except DataError as exc:
        raise SpecError(exc.message, path=exc.path, key=exc.key, hint=exc.hint) from None
