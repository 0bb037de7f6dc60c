"""The Calibration screen (key 7) on a deterministic store: three run folders written with
the real evaluate() (tests/_runfolders.py), two of them given intervals scored by the real
engine.eval.uncertainty — one calibrated, one overconfident (σ halved) — and one without σ."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
from _tui_stores import settle
from _uq_stores import calibration_workspace

from logg_tui.app import LoggApp

WS = Path(tempfile.gettempdir()) / "logg-tui-snapshots" / "ws-calibration"
@pytest.fixture
def anyio_backend():
    return "asyncio"


@pytest.fixture(scope="module")
def ws():
    return calibration_workspace(WS)


@pytest.mark.anyio
async def test_calibration_screen_shows_coverage_flags_and_missing_sigma(ws):
    app = LoggApp(ws, readonly=True)
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(pilot)
        await pilot.press("7")
        await settle(pilot)
        screen = app.screen
        table = screen.query_one("#table")
        rows = {table.get_row_at(i)[0]: table.get_row_at(i) for i in range(table.row_count)}
        assert set(rows) == {"ridge 10k", "vit 100k"}
        ridge, vit = rows["ridge 10k"], rows["vit 100k"]
        assert float(str(ridge[2])) < 80 and "⚠" in str(ridge[4])      # overconfident
        assert abs(float(str(vit[2])) - 95) < 3 and float(str(vit[3])) == pytest.approx(1.0)
        status = str(screen.query_one("#status").render())
        assert "no σ: lgbm" in status


def test_calibration_80x24(ws, snap_compare):
    async def run_before(pilot) -> None:
        await settle(pilot)
        await pilot.press("7")
        await settle(pilot)
    assert snap_compare(LoggApp(ws, readonly=True), terminal_size=(80, 24),
                        run_before=run_before)
