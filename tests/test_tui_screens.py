"""Pilot tests of every screen on a store built by the engine itself: three tiny REAL
runs (`logg-engine run` → worker → evaluate → ingest) on a real pfsspec dataset. What the
screens show is checked against the run folders and the store."""

from __future__ import annotations

import subprocess
import sys

import pytest
from _tui_stores import (analysis_rows, folder_workspace, metrics_json,
                         real_runs_workspace, settle)
from textual.command import CommandPalette
from textual.widgets import Log, Static, TextArea

from logg_tui.app import LoggApp
from logg_tui.screens.help import HelpScreen
from logg_tui.widgets.frame_table import FrameTable, fmt_cell

SIZE = (120, 36)
pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend():
    return "asyncio"


@pytest.fixture(scope="module")
def ws(tmp_path_factory):
    return real_runs_workspace(tmp_path_factory.mktemp("tui-real") / "ws")


def run_ids(ws, model=None):
    return sorted(p.name for p in (ws / "runs").iterdir()
                  if model is None or p.name.startswith(model + "-"))


def status(app) -> str:
    return str(app.screen.query_one("#status").render())


def cell(table: FrameTable, key: str, column: str) -> str:
    v = table.get_cell(key, column)
    return v.plain if hasattr(v, "plain") else str(v)


async def test_runs_screen_lists_the_real_runs(ws):
    app = LoggApp(ws, readonly=True)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        table = app.screen.query_one("#runs", FrameTable)
        assert sorted(table.keys) == run_ids(ws)
        for rid in run_ids(ws):
            m = metrics_json(ws, rid)["overall"]
            assert cell(table, rid, "r2") == fmt_cell(m["r2"]).plain
            assert cell(table, rid, "status") == "finished"
        assert status(app).startswith("3 runs")
        # quick filter
        await pilot.press("slash", *"lgbm", "enter")
        await settle(pilot)
        assert table.keys == run_ids(ws, "lgbm")
        # SQL WHERE fragment (the filter box still says lgbm: both apply) → then clear it
        await pilot.press("slash", "ctrl+u", "enter", "w", *"size = 800", "enter")
        await settle(pilot)
        sizes = {rid: metrics_json(ws, rid) for rid in table.keys}
        assert len(table.keys) == 2 and sizes
        # sort by R² descending via the header
        await pilot.press("w", "ctrl+u", "enter")
        await settle(pilot)
        table.focus()
        for _ in range(8):  # s cycles started → r2
            if app.screen.sort == "r2":
                break
            await pilot.press("s")
        await settle(pilot)
        r2s = [metrics_json(ws, k)["overall"]["r2"] for k in table.keys]
        assert r2s == sorted(r2s, reverse=True)


async def test_run_detail_shows_metrics_bins_plots_log(ws):
    (lgbm,) = run_ids(ws, "lgbm")
    m = metrics_json(ws, lgbm)
    app = LoggApp(ws, readonly=True)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        app.open_run(lgbm)
        await settle(pilot)
        screen = app.screen
        summary = str(screen.query_one("#summary", Static).render())
        assert "reproduce" in summary and "run lgbm --size 800" in summary
        assert "lgbm-fast" in summary  # preset in provenance
        metrics = screen.query_one("#metrics", FrameTable)
        r2_row = next(i for i in range(metrics.row_count)
                      if metrics.get_row_at(i)[:2] == ["all", "r2"])
        value = metrics.get_row_at(r2_row)[2]
        assert value.plain == f"{m['overall']['r2']:.4f}"
        assert f"[{m['overall']['r2_lo']:.4f}, {m['overall']['r2_hi']:.4f}]" in \
            metrics.get_row_at(r2_row)[3]
        assert screen.query_one("#bintable", FrameTable).row_count == len(m["bins"])
        assert "200 sampled predictions" in status(app)  # n_test = 200
        await pilot.press("t", "t", "t", "t")  # → Log tab
        await settle(pilot)
        log = "\n".join(screen.query_one("#logview", Log).lines)
        assert '"event": "end", "status": "finished"' in log
        assert screen.query_one("#curveplot").plt is not None
        await pilot.press("escape")
        assert type(app.screen).__name__ == "RunsScreen"


async def test_mark_two_runs_and_compare(ws):
    ridge = run_ids(ws, "ridge")
    app = LoggApp(ws, readonly=True)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        table = app.screen.query_one("#runs", FrameTable)
        for rid in ridge:
            table.move_cursor(row=table.keys.index(rid))
            await pilot.press("space")
        assert app.selected == ridge
        await pilot.press("c")
        await settle(pilot)
        assert type(app.screen).__name__ == "CompareScreen"
        keys = set(app.screen.query_one("#cfg", FrameTable).keys and
                   [r[0] for r in (app.screen.query_one("#cfg", FrameTable).get_row_at(i)
                                   for i in range(app.screen.query_one("#cfg").row_count))])
        assert {"preset", "train_size", "param.alpha"} <= keys and "model" not in keys
        met = app.screen.query_one("#met", FrameTable)
        r2 = met.get_row_at(0)
        a, b = (metrics_json(ws, r)["overall"]["r2"] for r in ridge)
        assert r2[0] == "r2" and r2[4].plain == fmt_cell(b - a, 4).plain


async def test_scaling_and_snr_screens(ws):
    app = LoggApp(ws, readonly=True)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("2")
        await settle(pilot)
        t = app.screen.query_one("#table", FrameTable)
        got = sorted((t.get_row_at(i)[0], t.get_row_at(i)[1].plain) for i in range(t.row_count))
        assert got == [("lgbm", "800"), ("ridge", "500"), ("ridge", "800")]
        assert "3 points, 2 models" in status(app)
        await pilot.press("m")
        assert "plotting MAE" in status(app)
        await pilot.press("3")
        await settle(pilot)
        assert "2 runs (best run per model)" in status(app)
        # the fake dataset carries no crlb_log_g, so the store has no ceiling to draw
        assert all(b.get("r2_max") is None for r in run_ids(ws)
                   for b in metrics_json(ws, r)["bins"])
        assert "ceiling: none in the store" in status(app)


async def test_moe_screen_shows_the_real_analyses(ws):
    oracle = analysis_rows(ws, "moe_oracle")
    want = oracle[oracle["metric"] == "r2_oracle"].sort_values("row_idx")["value"].tolist()
    gate = analysis_rows(ws, "moe_gate")
    dl = analysis_rows(ws, "deleakage")
    app = LoggApp(ws, readonly=True)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("4")
        await settle(pilot)
        for key in ("oracle", "moe_gate", "deleakage"):
            assert not app.screen.query_one(f"#{key}-empty").display
            assert app.screen.query_one(f"#{key}-table").display
        t = app.screen.query_one("#oracle-table", FrameTable)
        col = t.column_names.index("r2_oracle")
        got = [float(t.get_row_at(i)[col].plain) for i in range(t.row_count)]
        assert got == pytest.approx(want[:9], abs=5e-4)  # 9 Teff×[M/H] bins, 3 decimals
        g = app.screen.query_one("#moe_gate-table", FrameTable)
        assert g.column_names[-1] == "R² logreg/soft" and g.row_count == 9
        gate_r2 = gate[(gate["metric"] == "r2_gate") & gate["extra"].str.contains('"bin"')]
        assert float(g.get_row_at(0)[2].plain) == pytest.approx(
            gate_r2.sort_values("row_idx")["value"].iloc[0], abs=5e-4)
        d = app.screen.query_one("#deleakage-table", FrameTable)
        assert d.row_count == dl["key"].nunique()
        assert "oracle, moe_gate, deleakage" in status(app)


async def test_sql_screen_runs_read_only_queries(ws):
    app = LoggApp(ws, readonly=True)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("6")
        await settle(pilot)
        objects = [str(o.prompt) for o in app.screen.query_one("#objects").options]
        assert "view  leaderboard" in objects and "table predictions" in objects
        app.screen.query_one("#query", TextArea).text = \
            "SELECT count(*) AS n FROM predictions"
        await pilot.press("f5")
        await settle(pilot)
        res = app.screen.query_one("#result", FrameTable)
        assert res.get_row_at(0)[0].plain == "600"  # 3 runs × 200 test spectra
        app.screen.query_one("#query", TextArea).text = "DROP TABLE runs"
        await pilot.press("f5")
        await settle(pilot)
        assert "read-only" in status(app)


async def test_sql_escape_leaves_the_editor(ws):
    """Escape hands the keys back to the screen: a digit then switches screens instead of
    going into the query; e goes back into the editor."""
    app = LoggApp(ws, readonly=True)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.press("6")
        await settle(pilot)
        area = app.screen.query_one("#query", TextArea)
        area.text = "SELECT 1"
        area.focus()
        await pilot.press("end", "space", "2")
        assert area.text == "SELECT 1 2"  # in the editor, a digit is text
        await pilot.press("escape")
        await pilot.pause()
        assert not area.has_focus
        await pilot.press("2")
        await settle(pilot)
        assert type(app.screen).__name__ == "ScalingScreen"
        assert area.text == "SELECT 1 2"
        await pilot.press("6")
        await settle(pilot)
        await pilot.press("e", "3")
        assert area.has_focus and area.text.endswith("3")
        assert type(app.screen).__name__ == "SqlScreen"


async def test_help_on_every_screen(ws):
    app = LoggApp(ws, readonly=True)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        seen = set()
        for key in ["1", "2", "3", "4", "5", "6", "l"]:
            await pilot.press(key)  # no need to wait for the screen's data here
            await pilot.pause()
            screen = app.screen
            await pilot.press("question_mark")
            await pilot.pause()
            assert isinstance(app.screen, HelpScreen), key
            assert app.screen.screen_help == screen.HELP and screen.HELP
            seen.add(type(screen).__name__)
            await pilot.press("escape")
            assert app.screen is screen
        app.open_run(run_ids(ws)[0])
        await settle(pilot)
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        assert len(seen) == 7


async def test_command_palette_opens_a_run(ws):
    (ridge,) = run_ids(ws, "ridge")[:1]
    app = LoggApp(ws, readonly=True)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("ctrl+p")
        await pilot.pause()
        assert isinstance(app.screen, CommandPalette)
        await pilot.press(*f"run {ridge[-4:]}")  # fuzzy: the id's random tail narrows it
        await pilot.pause(0.5)
        hits = app.screen.query_one("CommandList")
        prompts = [str(hits.get_option_at_index(i).prompt) for i in range(hits.option_count)]
        hits.highlighted = next(i for i, p in enumerate(prompts) if ridge in p)
        await pilot.press("enter")
        await settle(pilot)
        assert type(app.screen).__name__ == "RunDetailScreen" and app.screen.run_id == ridge


HOLD = """
import sys, time, duckdb
con = duckdb.connect(sys.argv[1])
print("held", flush=True)
time.sleep(20)
"""


async def test_held_store_shows_a_status_line_and_refresh_ingests(tmp_path):
    ws = folder_workspace(tmp_path / "ws")
    app = LoggApp(ws, ingest_on_start=False)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        assert status(app).startswith("6 runs")
        p = subprocess.Popen([sys.executable, "-c", HOLD, str(ws / "results.duckdb")],
                             stdout=subprocess.PIPE, text=True)
        try:
            assert p.stdout.readline().strip() == "held"
            app.screen.load()
            await settle(pilot)
            assert status(app).startswith("store:") and "another process" in status(app)
            assert app.is_running
        finally:
            p.kill()
            p.wait()
        # a new run folder appears; r ingests it and the table shows it, no restart
        from _runfolders import make_run_folder

        make_run_folder(ws, "r9-new", model="ridge", train_size=500)
        await pilot.press("r")
        await settle(pilot)
        assert "r9-new" in app.screen.query_one("#runs", FrameTable).keys
        assert status(app).startswith("7 runs")
