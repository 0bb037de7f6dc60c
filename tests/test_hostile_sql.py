"""User SQL is locked down the same way everywhere: the SAME hostile statements go through
`logg-engine query` (a real subprocess) and the TUI's SQL screen (the real app under
Pilot), and both refuse each one with the same message, create no file and leave the store
unchanged; ordinary SELECTs over the views still work in both. Both surfaces read through
engine.store.reader.StoreReader, so this is the regression test for the TUI's `COPY (select
42) TO 'out.csv'` that used to write the file."""

from __future__ import annotations

import json
import re
import subprocess

import pytest
from _tui_stores import CLI, cli_env, folder_workspace, settle
from textual.widgets import TextArea

from engine.paths import store_path
from logg_tui.app import LoggApp
from logg_tui.widgets.frame_table import FrameTable

pytestmark = pytest.mark.anyio

# (statement, files it would create relative to the working directory)
HOSTILE = [
    ("COPY (SELECT 42) TO 'out.csv'", ["out.csv"]),
    ("COPY runs TO 'runs.parquet' (FORMAT parquet)", ["runs.parquet"]),
    ("COPY runs FROM '/etc/passwd'", []),
    ("SELECT * FROM read_csv('/etc/passwd', sep = ':')", []),
    ("SELECT * FROM glob('/etc/*')", []),
    ("SELECT * FROM read_text('/etc/hostname')", []),
    ("ATTACH ':memory:' AS scratch", []),
    ("ATTACH 'other.duckdb' AS other", ["other.duckdb"]),
    ("DETACH results", []),
    ("INSTALL httpfs", []),
    ("LOAD httpfs", []),
    ("SET enable_external_access = true", []),
    ("RESET lock_configuration", []),
    ("PRAGMA enable_profiling", []),
    ("PRAGMA threads = 1", []),
    ("CREATE TABLE t AS SELECT 1 AS a", []),
    ("CREATE TEMP TABLE t AS SELECT 1 AS a", []),
    ("INSERT INTO runs (run_id) VALUES ('x')", []),
    ("DELETE FROM runs", []),
    ("EXPORT DATABASE 'exported'", ["exported"]),
    ("CALL pragma_version()", []),
    ("SELECT 1; COPY (SELECT 42) TO 'multi.csv'", ["multi.csv"]),
]
VIEW_SQL = "SELECT model, count(*) AS n FROM leaderboard GROUP BY model ORDER BY model"
FINISHED_PER_MODEL = {"lgbm": 2, "ridge": 2, "vit": 1}  # tests/_tui_stores.py FOLDER_RUNS


@pytest.fixture
def anyio_backend():
    return "asyncio"


@pytest.fixture(scope="module")
def ws(tmp_path_factory):
    return folder_workspace(tmp_path_factory.mktemp("hostile") / "ws")


def refusal(text: str) -> str:
    """The engine's one-line refusal inside a CLI stderr or a TUI status line."""
    m = re.search(r"\[SQL\]: (.*?)(\n| · fix:|$)", text)
    assert m, text
    return m.group(1).strip()


def cli_query(ws, cwd, *args) -> subprocess.CompletedProcess:
    return subprocess.run([*CLI, "query", *args], env=cli_env(ws), cwd=cwd,
                          capture_output=True, text=True, timeout=120)


def store_state(ws) -> tuple[bytes, list[str]]:
    return store_path(ws).read_bytes(), sorted(p.name for p in ws.iterdir())


async def tui_run(app, pilot, sql: str) -> str:
    app.screen.query_one("#query", TextArea).text = sql
    await pilot.press("f5")
    await settle(pilot)
    return str(app.screen.query_one("#status").render())


async def test_same_hostile_statements_refused_by_cli_and_tui(ws, tmp_path, monkeypatch):
    cli_dir, tui_dir = tmp_path / "cli", tmp_path / "tui"
    cli_dir.mkdir()
    tui_dir.mkdir()
    before = store_state(ws)
    cli_says = {}
    for sql, files in HOSTILE:
        res = cli_query(ws, cli_dir, sql)
        assert res.returncode == 2, (sql, res.stdout, res.stderr)
        assert "Traceback" not in res.stderr and res.stdout == "", sql
        assert res.stderr.startswith("error: [SQL]: refused"), (sql, res.stderr)
        assert "fix: only SELECT-like statements run here" in res.stderr, sql
        cli_says[sql] = refusal(res.stderr)
        for f in files:
            assert not (cli_dir / f).exists() and not (ws / f).exists(), (sql, f)
    assert list(cli_dir.iterdir()) == []

    monkeypatch.chdir(tui_dir)  # where a relative COPY target would land
    app = LoggApp(ws, readonly=True)
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(pilot)
        await pilot.press("6")
        await settle(pilot)
        for sql, _ in HOSTILE:
            status = await tui_run(app, pilot, sql)
            assert status.startswith("error: [SQL]: refused"), (sql, status)
            assert refusal(status) == cli_says[sql], sql
            assert "fix: only SELECT-like statements run here" in status, sql
        status = await tui_run(app, pilot, VIEW_SQL)  # the screen still works after them
        assert status.startswith(f"{len(FINISHED_PER_MODEL)} rows"), status
    assert list(tui_dir.iterdir()) == []
    assert store_state(ws) == before


def test_refusals_say_why(ws, tmp_path):
    """One reason per kind of statement, so the user knows what to do instead."""
    why = {sql: refusal(cli_query(ws, tmp_path, sql).stderr) for sql in (
        "COPY (SELECT 42) TO 'out.csv'", "SELECT * FROM read_csv('/etc/passwd')",
        "ATTACH ':memory:' AS m", "INSTALL httpfs", "SET threads = 1",
        "INSERT INTO runs (run_id) VALUES ('x')")}
    assert "cannot read or write files" in why["COPY (SELECT 42) TO 'out.csv'"]
    assert "cannot read or write files" in why["SELECT * FROM read_csv('/etc/passwd')"]
    assert "cannot attach databases" in why["ATTACH ':memory:' AS m"]
    assert "cannot install or load extensions" in why["INSTALL httpfs"]
    assert "cannot change settings" in why["SET threads = 1"]
    assert "read-only" in why["INSERT INTO runs (run_id) VALUES ('x')"]


async def test_ordinary_selects_over_views_work_in_both(ws, tmp_path):
    res = cli_query(ws, tmp_path, VIEW_SQL, "--json")
    assert res.returncode == 0, res.stderr
    assert {r["model"]: r["n"] for r in json.loads(res.stdout)} == FINISHED_PER_MODEL
    for sql in ("DESCRIBE scaling_curve", "SHOW TABLES", "SUMMARIZE runs",
                "FROM r2_vs_snr LIMIT 3", "EXPLAIN SELECT * FROM leaderboard",
                "WITH x AS (SELECT 1 AS a) SELECT * FROM x"):
        assert cli_query(ws, tmp_path, sql).returncode == 0, sql
    app = LoggApp(ws, readonly=True)
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(pilot)
        await pilot.press("6")
        await settle(pilot)
        await tui_run(app, pilot, VIEW_SQL)
        table = app.screen.query_one("#result", FrameTable)
        got = {str(table.get_row_at(i)[0]): int(str(table.get_row_at(i)[1]))
               for i in range(table.row_count)}
        assert got == FINISHED_PER_MODEL
