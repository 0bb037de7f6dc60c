"""The model adapter contract: what the runner calls and what it hands over.

This module is the source of truth for the protocol docs/dev-contracts.md describes. A
model joins every command (run, scaling, TUI) by an adapter that satisfies `ModelAdapter`
and one line in engine.runs.registry; tests/test_model_contract.py checks every
registered adapter against it (isinstance at run time, mypy statically).

Why typed contexts and not loose arguments: the runner owns the run (its spec, its
folder, its splits), the adapter owns the model. `TrainContext` carries everything a
trainer may use, `PredictContext` the split being predicted and which of its rows, so an
adapter never has to rediscover run facts (by reading run.json, or by matching rows)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np

if TYPE_CHECKING:
    from engine.io.dataset import Split


def _never() -> bool:
    return False


@dataclass(frozen=True)
class TrainContext:
    """Training inputs and plumbing. ``train``/``val`` are engine.io Splits (clean flux +
    error; the adapter draws the seeded training noise, one realisation per copy, copy k
    with seed + k), ``callbacks`` receive engine events, ``should_stop()`` turns True
    after SIGTERM (trainers check it and end early)."""

    train: Split
    val: Split | None
    noise_level: float
    seed: int
    augment_copies: int = 1           # K seeded noise realisations of the training rows
    callbacks: Sequence[Callable[..., None]] = ()
    run_dir: Path = Path(".")
    checkpoint_dir: Path = Path("checkpoints")
    resume: bool = False
    device: str = "cpu"
    should_stop: Callable[[], bool] = field(default=_never)
    dataset_fingerprint: str = ""
    dataset_root: Path | None = None  # caches live under <dataset_root>/.cache
    workers: int = 1                  # > 1: data-parallel training via Ray Train
    ray_address: str | None = None    # the cluster to join for it (None: $RAY_ADDRESS or local)


@dataclass(frozen=True)
class PredictContext:
    """Rows [start, stop) of the split being predicted: ``flux`` is their frozen noisy
    flux (float32, (stop - start, n_pixels)), the runner's scoring input. A model that
    needs more of those rows (the template fit's 1σ errors) reads them from ``split``."""

    split: Split
    flux: np.ndarray
    noise_level: float
    start: int = 0

    @property
    def stop(self) -> int:
        return self.start + len(self.flux)


@runtime_checkable
class ModelAdapter(Protocol):
    """The runner's view of one model. ``presets`` maps a preset name to the estimator's
    hyper-parameters (the first is the default); run options (noise, seed, augmented
    copies, workers) are not hyper-parameters and come in the TrainContext."""

    name: str                          # "ridge" | "lgbm" | "vit" | "template-fit"
    distributed: bool                  # trains data-parallel when TrainContext.workers > 1
    resumes: bool                      # continues from checkpoint_dir when ctx.resume
    augments: bool                     # honours TrainContext.augment_copies > 1

    @property
    def presets(self) -> Mapping[str, Mapping[str, Any]]:
        """Preset name → hyper-parameters; the first is the default (read-only here, so
        an adapter may hold a plain dict)."""
        ...

    def build(self, params: Mapping[str, Any]) -> Any:
        """An unfitted sklearn-style estimator from resolved hyper-parameters."""
        ...

    def train(self, est: Any, ctx: TrainContext) -> Any:
        """Fit on ctx.train (select on ctx.val); returns the fitted estimator. Raises
        engine.models.base.TrainingCancelled, or returns early, when ctx.should_stop()."""
        ...

    def predict(self, est: Any, ctx: PredictContext) -> np.ndarray:
        """log g (dex) for the rows of ``ctx``, one value per row."""
        ...

    def describe(self, est: Any) -> dict[str, Any]:
        """Model facts stored under ``extra.model`` in metrics.json."""
        ...

    def save(self, est: Any, directory: Path) -> None:
        """Write the fitted model into ``directory`` (no pickle)."""
        ...

    def load(self, directory: Path) -> Any:
        """The fitted model ``save`` wrote."""
        ...
