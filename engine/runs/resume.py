"""Continuing a run that died: a new run of the same parameters starts from the checkpoint
the dead one left, instead of from step 0.

A ViT step of the study is tens of minutes on 2 cores and hours at 500k–1M on a GPU; a
Ctrl-C, a `kill -9`, a reboot or a failure after training (a full disk while writing the
predictions) used to throw that away, because a relaunched step makes a new run folder (the
old one is `lost`, `cancelled` or `failed` and stays, as history). Now `launch_run` asks
`find_resumable` for the newest such run with the SAME key as the new one
(model, config hash, dataset fingerprint, training size, noise level, seed, test split)
whose `checkpoints/` holds files, copies them into the new run's `checkpoints/` and records
`resumed_from` in run.json; the worker then trains with `TrainContext.resume`. A run that
a later run has continued from is not offered again (the later run holds its progress).
Only models whose adapter says `resumes = True` take part (the ViT: its trainer restores
model, optimiser, schedule, RNG and loop position from `last.pt` and skips exactly the
batches it had trained, so a resumed run ends with the weights of an uninterrupted one).

The dead run's folder is never touched (the copy is made into the new folder, file by file
through a temporary name), so a resume that dies itself loses nothing either: the next one
starts from the newest checkpoint of the two."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from engine.paths import runs_dir
from engine.run_state import fold_run_folder, read_run_json

# Died, stopped, or failed: a failure after training (a disk, an import) then only redoes
# what came after the checkpoint; one in training (divergence) recurs at the same step
# from the checkpoint, i.e. sooner than from step 0. `--fresh` starts over in any case.
RESUMABLE = ("lost", "cancelled", "failed")


def run_key(spec: Any, fingerprint: str) -> dict[str, Any]:
    """The fields that make two runs the same run (the store's skip key, too)."""
    return {"model": spec.model, "config_hash": spec.config_hash(),
            "dataset_fingerprint": fingerprint, "train_size": spec.train_size,
            "noise_level": spec.noise_level, "seed": spec.seed,
            "test_split": spec.test_split}


def find_resumable(workspace: Path, spec: Any, fingerprint: str) -> Path | None:
    """The run folder to continue `spec` from: among the lost, cancelled or failed runs with its
    key and a non-empty `checkpoints/` that no later run has continued from already, the
    one whose newest checkpoint is newest."""
    want = run_key(spec, fingerprint)
    same = [(d, run) for d, run in _candidates(Path(workspace), want["model"])
            if _key_of(run) == want]
    continued = {run.get("resumed_from") for _, run in same}
    best: tuple[float, Path] | None = None
    for run_dir, run in same:
        if run_dir.name in continued:
            continue
        newest = _newest_checkpoint(run_dir / "checkpoints")
        if newest is None or (best is not None and newest <= best[0]):
            continue
        if fold_run_folder(run_dir, run=run).status in RESUMABLE:
            best = (newest, run_dir)
    return None if best is None else best[1]


def adopt_checkpoints(previous: Path, run_dir: Path) -> list[str]:
    """Copy `previous/checkpoints/*` into `run_dir/checkpoints/` (each through a temporary
    name, then renamed: a copy cut short never looks like a checkpoint); the names."""
    src, dst = Path(previous) / "checkpoints", Path(run_dir) / "checkpoints"
    dst.mkdir(parents=True, exist_ok=True)
    names = []
    for f in sorted(p for p in src.iterdir() if p.is_file() and not p.name.startswith(".")):
        tmp = dst / f".{f.name}.copy"
        shutil.copy2(f, tmp)
        tmp.replace(dst / f.name)
        names.append(f.name)
    return names


def _candidates(workspace: Path, model: str) -> Iterator[tuple[Path, dict[str, Any]]]:
    root = runs_dir(workspace)
    try:
        dirs = sorted(root.glob(f"{model}-*"))
    except OSError:
        return
    for d in dirs:
        try:
            yield d, read_run_json(d)
        except (OSError, ValueError):
            continue  # a folder being created, or broken: ingest reports those


def _key_of(run: dict[str, Any]) -> dict[str, Any]:
    dataset = run.get("dataset") or {}
    return {"model": run.get("model"), "config_hash": run.get("config_hash"),
            "dataset_fingerprint": dataset.get("fingerprint"),
            "train_size": run.get("train_size"), "noise_level": run.get("noise_level"),
            "seed": run.get("seed"), "test_split": run.get("test_split")}


def _newest_checkpoint(ckpt: Path) -> float | None:
    try:
        times = [p.stat().st_mtime for p in ckpt.iterdir()
                 if p.is_file() and not p.name.startswith(".")]
    except OSError:
        return None
    return max(times) if times else None
