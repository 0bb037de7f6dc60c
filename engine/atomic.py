"""Files written whole or not at all: a temporary name in the same folder, then rename."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np


def save_npy(path: Path, array: np.ndarray) -> None:
    """np.save to `path` atomically (a killed process never leaves a torn cache file)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as fh:
        np.save(fh, array)
    os.replace(tmp, path)
