"""SVG snapshots of the main screens (pytest-textual-snapshot) on a deterministic store:
run folders written with the engine's evaluate() at fixed times and seeds, ingested by
engine.store.ingest, at a fixed path (the path shows in the header and the launch form).
Every screen also has an 80×24 snapshot (the smallest terminal we support): its key
columns must be in view there (issue 14 item 6). Jobs has none: its idle progress bar is
animated, so its SVG differs run to run (tests/test_tui_jobs.py covers that screen).
Update after an intended change with `pytest tests/test_tui_snapshots.py --snapshot-update`
and look at the SVGs in tests/__snapshots__/test_tui_snapshots/."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
from _tui_stores import folder_workspace, settle

from logg_tui.app import LoggApp

WS = Path(tempfile.gettempdir()) / "logg-tui-snapshots" / "ws"


@pytest.fixture(scope="module")
def ws():
    return folder_workspace(WS)


def keys(*press: str):
    async def run_before(pilot) -> None:
        await settle(pilot)
        for k in press:
            await pilot.press(k)
            await settle(pilot)
    return run_before


def app(ws) -> LoggApp:
    return LoggApp(ws, readonly=True)


def test_runs_80x24(ws, snap_compare):
    assert snap_compare(app(ws), terminal_size=(80, 24), run_before=keys())


def test_runs_160x48_marked(ws, snap_compare):
    assert snap_compare(app(ws), terminal_size=(160, 48),
                        run_before=keys("down", "space", "space"))


def test_run_detail_bins_and_plots(ws, snap_compare):
    assert snap_compare(app(ws), terminal_size=(120, 36),
                        run_before=keys("down", "down", "enter", "t", "t"))


def test_compare_metrics(ws, snap_compare):
    assert snap_compare(app(ws), terminal_size=(100, 30),
                        run_before=keys("down", "space", "space", "c", "t"))


def test_scaling(ws, snap_compare):
    assert snap_compare(app(ws), terminal_size=(120, 36), run_before=keys("2"))


def test_r2_vs_snr(ws, snap_compare):
    assert snap_compare(app(ws), terminal_size=(120, 36), run_before=keys("3"))


def test_moe_empty_state(ws, snap_compare):
    assert snap_compare(app(ws), terminal_size=(80, 24), run_before=keys("4"))


def test_launch_form(ws, snap_compare):
    assert snap_compare(app(ws), terminal_size=(100, 30), run_before=keys("l"))


def test_help(ws, snap_compare):
    assert snap_compare(app(ws), terminal_size=(80, 24), run_before=keys("question_mark"))


# ------------------------------------------------------------------ every screen at 80×24
SMALL = (80, 24)


def test_run_detail_80x24(ws, snap_compare):
    assert snap_compare(app(ws), terminal_size=SMALL, run_before=keys("down", "down", "enter"))


def test_run_detail_bins_80x24(ws, snap_compare):
    """scheme, label, n, R² with its CI and the ceiling r2_max in view."""
    assert snap_compare(app(ws), terminal_size=SMALL,
                        run_before=keys("down", "down", "enter", "t"))


def test_compare_80x24(ws, snap_compare):
    assert snap_compare(app(ws), terminal_size=SMALL,
                        run_before=keys("down", "space", "space", "c", "t"))


def test_scaling_80x24(ws, snap_compare):
    assert snap_compare(app(ws), terminal_size=SMALL, run_before=keys("2"))


def test_r2_vs_snr_80x24(ws, snap_compare):
    """The table goes under the plot: run, SNR, R², ceiling and gap all in view."""
    assert snap_compare(app(ws), terminal_size=SMALL, run_before=keys("3"))


def test_sql_80x24(ws, snap_compare):
    assert snap_compare(app(ws), terminal_size=SMALL, run_before=keys("6", "f5"))


def test_launch_80x24(ws, snap_compare):
    assert snap_compare(app(ws), terminal_size=SMALL, run_before=keys("l"))
