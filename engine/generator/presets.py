"""Dataset presets: which shards a build writes and what each carries.

Shard names follow the research set (`train_200k_0..4`, `val_6k`, `test_1k_0`,
`test_10k`): engine.io.dataset derives the train/val/test aliases from them."""

from __future__ import annotations

from dataclasses import dataclass, replace

from engine.errors import SpecError


@dataclass(frozen=True)
class ShardSpec:
    """One shard: rows, whether it stores the CRLB columns and a frozen `noisy` array."""

    name: str
    rows: int
    crlb: bool = False
    noisy: bool = False

    @property
    def role(self) -> str:
        return self.name.split("_", 1)[0]


@dataclass(frozen=True)
class Preset:
    name: str
    shards: tuple[ShardSpec, ...]
    snap: bool = False          # BOSZ-grid snapping with one free axis (pfsspec-like)
    description: str = ""

    @property
    def train_rows(self) -> int:
        return sum(s.rows for s in self.shards if s.role == "train")


def size_label(rows: int) -> str:
    """2000 → '2k', 200000 → '200k', 1500 → '1500' (research shard-name style)."""
    return f"{rows // 1000}k" if rows % 1000 == 0 else str(rows)


PRESETS: dict[str, Preset] = {
    "tiny": Preset("tiny", (
        ShardSpec("train_1k_0", 1000),
        ShardSpec("val_100", 100, crlb=True),
        ShardSpec("test_200_0", 200, crlb=True, noisy=True),
    ), description="a few seconds; for tests and smoke checks"),
    "default": Preset("default", (
        ShardSpec("train_10k_0", 10000),
        ShardSpec("train_10k_1", 10000),
        ShardSpec("train_10k_2", 10000),
        # 5k validation stars (no CRLB, ~20 s to build): the conformal recalibration needs
        # a few hundred per SNR bin for its 95 % quantile (500 gave ~60 per bin, issue 13)
        ShardSpec("val_5k", 5000),
        ShardSpec("test_1k_0", 1000, crlb=True, noisy=True),
    ), description="the demo set (~30k train), a few minutes on 2 cores"),
    "bosz-1m": Preset("bosz-1m", tuple(
        [ShardSpec(f"train_200k_{i}", 200000) for i in range(5)]
        # val_6k: the research's val_1k (ViT early stopping) and its ~5,800-row split for the
        # regression gates (20 % of the covered training rows) in one validation split; no CRLB
        # (nothing scores val against the ceiling, and v2's CRLB is the expensive part).
        + [ShardSpec("val_6k", 6000), ShardSpec("test_1k_0", 1000, crlb=True, noisy=True),
           ShardSpec("test_10k", 10000, crlb=True, noisy=True)]),
        snap=True, description="mirrors the research 1M set (pfsspec-style grid snapping)"),
}


def get_preset(name: str) -> Preset:
    if name not in PRESETS:
        raise SpecError(f"unknown preset {name!r}", key="preset",
                        hint=f"use one of: {', '.join(PRESETS)}")
    return PRESETS[name]


def with_train_size(preset: Preset, total: int) -> Preset:
    """Re-split the training rows to `total`: shards no bigger than the preset's largest
    train shard, the same naming pattern (train_<size>_<i>)."""
    if total <= 0:
        raise SpecError(f"--size must be > 0, got {total}", key="size")
    train = [s for s in preset.shards if s.role == "train"]
    per = max(s.rows for s in train)
    n = -(-total // per)
    rows = [total // n + (1 if i < total % n else 0) for i in range(n)]
    new = [ShardSpec(f"train_{size_label(r)}_{i}", r) for i, r in enumerate(rows)]
    return replace(preset, shards=tuple(new) + tuple(s for s in preset.shards if s.role != "train"))
