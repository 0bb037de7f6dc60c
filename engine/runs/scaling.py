"""The scaling grid (models × training sizes) run sequentially through the local executor,
skipping every point the store already holds with the same key, and its table read back
from the store (never from memory: docs/dev-contracts.md, research pitfall 3).

A model joins the grid by being in the registry (engine.runs.registry)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from engine.errors import SpecError
from engine.runs.spec import RunSpec, build_spec


@dataclass(frozen=True)
class GridPoint:
    spec: RunSpec
    fingerprint: str
    existing_run: str | None  # a finished run with the same key, or None


def plan_grid(models: Sequence[str], sizes: Sequence[str | int], *, workspace: Path,
              dataset: str | None = None, presets: Mapping[str, str | None] | None = None,
              overrides: Mapping[str, Sequence[str]] | None = None,
              noise_level: float = 1.0, seed: int = 0, test_split: str = "test",
              val_split: str | None = "val", device: str = "auto", workers: int = 1,
              ray_address: str | None = None) -> list[GridPoint]:
    """Every spec of the grid, validated before anything runs (a size larger than the
    dataset is a SpecError here), each with the finished run that already covers it.
    `workers` > 1 applies to the models with data-parallel training (vit, lgbm); the
    others of the grid run as one process."""
    from engine.runs.registry import get_adapter
    from engine.store.reader import find_finished_run

    if not models or not sizes:
        raise SpecError("empty grid", key="models/sizes", hint="give --models and --sizes")
    specs = [build_spec(m, workspace=workspace, size=s, dataset=dataset,
                        preset=(presets or {}).get(m), overrides=(overrides or {}).get(m, ()),
                        noise_level=noise_level, seed=seed, test_split=test_split,
                        val_split=val_split, device=device,
                        workers=workers if getattr(get_adapter(m), "distributed", False) else 1,
                        ray_address=ray_address)
             for m in models for s in sizes]
    fps = {p: dataset_info(p)["fingerprint"] for p in {s.dataset_path for s in specs}}
    points = []
    for spec in specs:
        fp = fps[spec.dataset_path]
        found = find_finished_run(workspace, model=spec.model, config_hash=spec.config_hash(),
                                  dataset_fingerprint=fp, train_size=spec.train_size,
                                  noise_level=spec.noise_level, seed=spec.seed,
                                  test_split=spec.test_split)
        points.append(GridPoint(spec, fp, found))
    return points


def dataset_info(path: str | Path) -> dict[str, Any]:
    """{name, path, fingerprint, splits, shards, generator_version, preset, seed} of a
    dataset folder, for run.json."""
    from engine.io.dataset import Dataset

    with Dataset(path) as ds:
        splits = {"train": sum(ds.rows(s) for s in ds.alias("train"))}
        for role in ("val", "test"):
            try:
                splits[role] = ds.rows(ds.alias(role)[0])
            except Exception:  # noqa: BLE001 - a dataset without that role
                splits[role] = None
        return {"name": ds.name, "path": str(ds.root), "fingerprint": ds.fingerprint(),
                "splits": splits, "shards": {s: ds.rows(s) for s in ds.shards},
                **ds.identity()}


def run_grid(points: Sequence[GridPoint], *, workspace: Path,
             on_point: Callable[[int, GridPoint, str], None] | None = None,
             run_one: Callable[[RunSpec], tuple[str, str]] | None = None,
             ) -> list[tuple[GridPoint, str, str]]:
    """Run the points not yet in the store, one after the other. `run_one(spec)` →
    (run_id, status) does one run (the CLI passes one that draws progress); returns
    (point, run_id, status) for every point, skipped ones with status 'skipped'."""
    run_one = run_one or (lambda spec: launch_and_wait(spec, workspace))
    done = []
    for k, point in enumerate(points):
        if point.existing_run:
            if on_point:
                on_point(k, point, "skipped")
            done.append((point, point.existing_run, "skipped"))
            continue
        if on_point:
            on_point(k, point, "running")
        run_id, status = run_one(point.spec)
        done.append((point, run_id, status))
    return done


def launch_and_wait(spec: RunSpec, workspace: Path,
                    callbacks: Sequence[Callable[..., None]] = ()) -> tuple[str, str]:
    """Create the run folder, run the worker subprocess, follow it to its end."""
    from engine.runs.executor import follow, launch_run

    run_dir, proc = launch_run(workspace, spec)
    state = follow(run_dir, proc, callbacks)
    proc.wait()
    return run_dir.name, state.status


def grid_table(workspace: Path, run_ids: Sequence[str]) -> pd.DataFrame:
    """The grid's points of the scaling curve (model, train_size, R² with CI, MAE with
    CI, n, run_id): `StoreReader.scaling_curve` restricted to the grid's runs, the same
    read as the TUI's Scaling screen and the report."""
    from engine.store.reader import StoreReader

    if not run_ids:
        return pd.DataFrame()
    with StoreReader(workspace) as r:
        return r.scaling_curve(run_ids=list(run_ids))
