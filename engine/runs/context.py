"""RunContext: what an adapter's `train` gets from the runner (dev-contracts.md)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


def _never() -> bool:
    return False


@dataclass(frozen=True)
class RunContext:
    """Training inputs and plumbing. ``train``/``val`` are engine.io Splits (clean flux +
    error; the adapter draws the seeded training noise), ``callbacks`` receive engine
    events, ``should_stop()`` turns True after SIGTERM (trainers check it and end early)."""

    train: Any
    val: Any | None
    noise_level: float
    seed: int
    callbacks: Sequence[Callable[..., None]] = ()
    run_dir: Path = Path(".")
    checkpoint_dir: Path = Path("checkpoints")
    resume: bool = False
    device: str = "cpu"
    should_stop: Callable[[], bool] = field(default=_never)
    dataset_fingerprint: str = ""
    dataset_root: Path | None = None
    workers: int = 1                  # > 1: data-parallel training via Ray Train
    ray_address: str | None = None    # the cluster to join for it (None: $RAY_ADDRESS or local)
