"""Workspaces for the logg-tui tests, built by the engine itself.

- `real_runs_workspace`: a REAL pfsspec dataset (tests/fakes.py), three tiny real runs
  through `logg-engine run` (worker subprocesses, real Ridge / LightGBM, real evaluate,
  ingest by the runner) and three real analyses (`moe oracle`, `moe gate`, `deleakage`):
  what a user's workspace looks like.
- `folder_workspace`: run folders written by tests/_runfolders.py (real `evaluate()`,
  fixed timestamps and seeds) and ingested with engine.store.ingest — deterministic, for
  SVG snapshots and value oracles."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from _runfolders import make_run_folder
from fakes import make_fake_dataset

from engine.store.ingest import ingest_all

CLI = [sys.executable, "-c", "from engine.cli import main; main()"]
ANALYSES = [  # real analyses on the same dataset, for the MoE screen
    ("moe", "oracle", "--bins", "teff-mh", "--size", "800", "--n-boot", "50"),
    ("moe", "gate", "--bins", "teff-mh", "--gate", "logreg", "--features", "quality10",
     "--size", "800", "--n-boot", "50"),
    ("deleakage", "--size", "800"),
]
REAL_RUNS = [
    ("ridge", "500", ()),
    ("ridge", "800", ("--preset", "ridge-fixed", "--set", "alpha=1000")),
    ("lgbm", "800", ("--preset", "lgbm-fast")),
]
FOLDER_RUNS = [  # run_id, model, train_size, prediction scatter (dex), params
    ("r0-ridge-10k", "ridge", 10_000, 0.80, {"alpha": 5000.0}),
    ("r1-ridge-100k", "ridge", 100_000, 0.70, {"alpha": 100000.0}),
    ("r2-lgbm-10k", "lgbm", 10_000, 0.70, {"learning_rate": 0.05}),
    ("r3-lgbm-100k", "lgbm", 100_000, 0.60, {"learning_rate": 0.05}),
    ("r4-vit-100k", "vit", 100_000, 0.50, {"hidden_size": 256}),
]
T_END = 1_767_225_600.0  # 2026-01-01 00:00 UTC: fixed, so snapshots do not drift


def make_dataset(ws: Path) -> Path:
    return make_fake_dataset(ws / "datasets" / "fake", train_shards=(500, 300), n_val=150,
                             n_test=200, n_pixels=64) or ws / "datasets" / "fake"


def cli_env(ws: Path) -> dict:
    return {**os.environ, "LOGG_WORKSPACE": str(ws), "OMP_NUM_THREADS": "1"}


def real_runs_workspace(ws: Path, analyses: bool = True) -> Path:
    """Dataset + the REAL_RUNS (+ ANALYSES), run concurrently; each ingests itself."""
    make_dataset(ws)
    cmds = [["run", model, "--size", size, "--dataset", "fake", *extra]
            for model, size, extra in REAL_RUNS]
    cmds += [[*a, "--dataset", "fake"] for a in ANALYSES] if analyses else []
    procs = [subprocess.Popen([*CLI, *cmd], env=cli_env(ws), stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True) for cmd in cmds]
    for p in procs:
        out, _ = p.communicate(timeout=180)
        if p.returncode != 0:
            raise RuntimeError(f"fixture command failed ({p.returncode}):\n{out}")
    ingest_all(ws)  # idempotent; picks up anything a racing ingest skipped
    return ws


def folder_workspace(ws: Path, *, fresh: bool = True) -> Path:
    """FOLDER_RUNS plus one failed run, ingested; deterministic content."""
    if fresh and ws.exists():
        shutil.rmtree(ws)
    for k, (run_id, model, size, scatter, params) in enumerate(FOLDER_RUNS):
        make_run_folder(ws, run_id, model=model, train_size=size, noise=scatter, n=300,
                        params=params, ended=T_END + 600 * k)
    make_run_folder(ws, "r5-lgbm-failed", model="lgbm", status="failed",
                    params={"learning_rate": 0.05}, ended=T_END + 3600)
    ingest_all(ws)
    return ws


def analysis_rows(ws: Path, kind: str):
    """rows.parquet of the one analysis folder of `kind` (the engine's own output)."""
    import pandas as pd

    (d,) = [d for d in (ws / "analyses").iterdir()
            if json.loads((d / "analysis.json").read_text())["kind"] == kind]
    return pd.read_parquet(d / "rows.parquet")


def metrics_json(ws: Path, run_id: str) -> dict:
    return json.loads((ws / "runs" / run_id / "metrics.json").read_text())


async def settle(pilot) -> None:
    """Wait until every worker is done and the screen has processed their results."""
    for _ in range(3):
        await pilot.app.workers.wait_for_complete()
        await pilot.pause()
