"""Which torch device a command computes on: one resolver for the ViT (`run --device`) and
the generator (`data generate --device`, `data lattice build --device`, `data calibrate
--device`).

Names: `auto` (a CUDA GPU when torch sees one, else the CPU), `cpu`, `cuda`, `cuda:N`.
A GPU that was asked for and is not there is one clear SpecError naming the fix, never a
traceback from deep inside torch. torch is imported inside the function, so callers in
light layers stay light until a device is really needed."""

from __future__ import annotations

import re

from engine.errors import SpecError

DEVICE_NAMES = "auto, cpu, cuda or cuda:N"
_PATTERN = re.compile(r"auto|cpu|cuda(?::\d+)?")


def resolve_device(name: str | None = "auto"):
    """The torch.device that `name` means on this machine (None = auto)."""
    import torch

    name = "auto" if name is None else str(name).strip().lower()
    if not _PATTERN.fullmatch(name):
        raise SpecError(f"unknown device {name!r}", key="device", hint=f"use {DEVICE_NAMES}")
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(name)
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            why = "has no CUDA build" if torch.version.cuda is None else "sees no GPU"
            raise SpecError(f"device {name} requested but CUDA is not available (this torch "
                            f"{why})", key="device", hint="use --device cpu (or auto)")
        count = torch.cuda.device_count()
        if dev.index is not None and dev.index >= count:
            raise SpecError(f"device {name} requested but only {count} GPU(s) are visible",
                            key="device", hint=f"use cuda:0 … cuda:{count - 1}, or auto")
    return dev


def describe(dev) -> str:
    """'cpu' or 'cuda:0 (NVIDIA H100 80GB HBM3)': for logs and manifests."""
    import torch

    if dev.type != "cuda":
        return str(dev)
    index = dev.index if dev.index is not None else torch.cuda.current_device()
    return f"cuda:{index} ({torch.cuda.get_device_name(index)})"
