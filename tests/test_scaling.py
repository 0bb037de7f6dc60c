"""`logg-engine scaling`: the grid runs through real workers, skips points already in
the store, and prints the table read back from results.duckdb."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from engine.errors import SpecError
from engine.runs.scaling import grid_table, plan_grid
from engine.store.reader import query_df
from fakes import make_fake_dataset

CLI = [sys.executable, "-c", "from engine.cli import main; main()"]


@pytest.fixture
def ws(_isolated_workspace):
    make_fake_dataset(_isolated_workspace / "datasets" / "fake", train_shards=(300, 300),
                      n_val=100, n_test=120, n_pixels=32)
    return _isolated_workspace


def scaling(*args, **env):
    return subprocess.run([*CLI, "scaling", "--dataset", "fake", *args], capture_output=True,
                          text=True, timeout=180, env=dict(os.environ, COLUMNS="200", **env))


def test_grid_runs_then_skips_and_table_comes_from_the_store(ws):
    args = ("--models", "ridge,lgbm", "--sizes", "300,600", "--preset-lgbm", "lgbm-fast")
    first = scaling(*args, LOGG_PROGRESS_EVERY_S="0")
    assert first.returncode == 0, first.stderr + first.stdout
    # no terminal: the current run's progress as plain lines (its phase, done of the total,
    # the latest validation metrics, elapsed [and time left]), not one silent "running"
    # line; with LOGG_PROGRESS_EVERY_S=0 every state the CLI sees is a line, so each run
    # has at least its last one (how many trees land between two polls depends on speed)
    lines = re.findall(r"^\S.*: \d+/\d+ \(\d+ %\) (?:running|finished) .*\[\d+m\d\ds.*\]$",
                       first.stdout, re.M)
    assert len(lines) >= 4, first.stdout
    assert any("val_l2=" in line for line in lines)            # LightGBM's own metrics
    runs = query_df(ws, "SELECT run_id, model, train_size, status FROM runs")
    assert len(runs) == 4 and set(runs.status) == {"finished"}
    second = scaling(*args)
    assert second.returncode == 0, second.stderr
    assert second.stdout.count("skipped") == 4
    assert len(list((ws / "runs").iterdir())) == 4  # nothing re-ran
    table = grid_table(ws, list(runs.run_id))
    assert sorted(zip(table.model, table.train_size)) == [
        ("lgbm", 300), ("lgbm", 600), ("ridge", 300), ("ridge", 600)]
    assert (table.r2_lo <= table.r2).all() and (table.r2 <= table.r2_hi).all()
    for row in table.itertuples():  # the printed numbers are the store's
        assert f"{row.r2:.4f} [{row.r2_lo:.4f}, {row.r2_hi:.4f}]" in second.stdout
    # a changed hyper-parameter is a new key: only that model's points rerun
    plan = plan_grid(["ridge", "lgbm"], ["300"], workspace=ws, dataset="fake",
                     presets={"ridge": "ridge-fixed", "lgbm": "lgbm-fast"})
    assert [p.existing_run is None for p in plan] == [True, False]


def test_sizes_beyond_the_dataset_fail_before_anything_runs(ws):
    out = scaling("--models", "ridge", "--sizes", "300,2k")
    assert out.returncode == 2 and "asked for 2000 training rows" in out.stderr
    assert "Traceback" not in out.stderr and not (ws / "runs").exists()
    with pytest.raises(SpecError):
        plan_grid(["ridge", "mlp"], ["300"], workspace=ws, dataset="fake")
