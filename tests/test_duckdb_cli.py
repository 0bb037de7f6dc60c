"""The DuckDB CLI the project installs (`duckdb-cli`, pinned in pyproject.toml) opens a
store that logg wrote: the README's `duckdb workspace/results.duckdb -c "from leaderboard"`
must work after `make demo`. The python package and the CLI are different DuckDB versions,
so this is a storage-format check (engine.store.connect.STORAGE_COMPATIBILITY)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from _runfolders import make_run_folder

from engine.paths import store_path
from engine.store.ingest import ingest_all
from engine.store.reader import query_df

VENV_BIN = Path(sys.executable).parent
DUCKDB = shutil.which("duckdb", path=str(VENV_BIN))
pytestmark = pytest.mark.skipif(
    DUCKDB is None, reason=f"no `duckdb` CLI in {VENV_BIN}: install the project "
    "(`pip install -e .`, which brings duckdb-cli) to run this check")
PYPROJECT = Path(__file__).resolve().parents[1] / "pyproject.toml"


def duckdb_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([DUCKDB, *args], capture_output=True, text=True, timeout=60)


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    ws = tmp_path_factory.mktemp("duckdb-cli") / "ws"
    for k, (model, size) in enumerate([("ridge", 10_000), ("ridge", 50_000),
                                       ("lgbm", 10_000)]):
        make_run_folder(ws, f"r{k}-{model}", model=model, train_size=size,
                        ended=1_767_225_600.0 + 60 * k)
    ingest_all(ws)
    return ws


def test_cli_is_the_pinned_version():
    pin = re.search(r'"duckdb-cli==([\d.]+)"', PYPROJECT.read_text()).group(1)
    assert duckdb_cli("--version").stdout.startswith(f"v{pin} ")


def test_cli_reads_the_views_of_a_store_logg_wrote(store):
    path = str(store_path(store))
    sql = ("SELECT run_id, model, train_size, round(r2, 9) AS r2 FROM leaderboard "
           "ORDER BY run_id")
    res = duckdb_cli("-readonly", "-json", path, "-c", sql)
    assert res.returncode == 0, res.stderr
    ours = query_df(store, sql)
    assert json.loads(res.stdout) == ours.to_dict(orient="records")
    assert len(ours) == 3
    res = duckdb_cli("-readonly", "-csv", path, "-c",
                     "SELECT count(*) FROM scaling_curve; SELECT count(*) FROM r2_vs_snr")
    assert res.returncode == 0, res.stderr
    assert res.stdout.split() == ["count_star()", "3", "count_star()",
                                  str(len(query_df(store, "FROM r2_vs_snr")))]


def test_readme_command_then_logg_still_reads(store):
    """The README's form (no -readonly) opens the store read-write in the CLI's version;
    logg must still read and write it afterwards."""
    res = duckdb_cli(str(store_path(store)), "-c", "from leaderboard")
    assert res.returncode == 0, res.stderr
    assert "r0-ridge" in res.stdout
    make_run_folder(store, "r9-lgbm", model="lgbm", train_size=50_000)
    ingest_all(store)
    assert len(query_df(store, "FROM leaderboard")) == 4
