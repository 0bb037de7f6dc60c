"""The Calibration screen (key 7) on a deterministic store: three run folders written with
the real evaluate() (tests/_runfolders.py), two of them given intervals scored by the real
engine.eval.uncertainty — one calibrated, one overconfident (σ halved) — and one without σ."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from _runfolders import make_run_folder
from _tui_stores import T_END, settle
from scipy.stats import norm

from engine.eval.uncertainty import LEVELS, score_uncertainty
from engine.store.ingest import ingest_all
from logg_tui.app import LoggApp

WS = Path(tempfile.gettempdir()) / "logg-tui-snapshots" / "ws-calibration"
RUNS = [("c0-ridge-10k", "ridge", 10_000, 0.5, 0.5),     # σ halved: overconfident
        ("c1-vit-100k", "vit", 100_000, 0.4, 1.0),       # σ = the true scatter
        ("c2-lgbm-10k", "lgbm", 10_000, 0.6, None)]      # no σ


def add_intervals(run_dir: Path, scatter: float, scale: float) -> None:
    """σ = scale × the true scatter for every star; the score appended to metrics.json."""
    p = pd.read_parquet(run_dir / "predictions.parquet")
    s = np.full(len(p), scatter * scale)
    z68, z95 = norm.ppf(0.5 + LEVELS[0] / 2), norm.ppf(0.975)
    b = {"lo68": p.y_pred - z68 * s, "hi68": p.y_pred + z68 * s,
         "lo95": p.y_pred - z95 * s, "hi95": p.y_pred + z95 * s}
    p = p.assign(sigma=s, sigma_raw=s, **b)
    p.to_parquet(run_dir / "predictions.parquet", index=False)
    sc = score_uncertainty(p.y_true, p.y_pred, s, b, p.assign(crlb_log_g=scatter ** 2))
    m = json.loads((run_dir / "metrics.json").read_text())
    m["uncertainty"] = {**sc.to_json(), "extra": {"status": "calibrated"}}
    (run_dir / "metrics.json").write_text(json.dumps(m))


def calibration_workspace(ws: Path) -> Path:
    import shutil
    if ws.exists():
        shutil.rmtree(ws)
    for k, (run_id, model, size, scatter, scale) in enumerate(RUNS):
        d = make_run_folder(ws, run_id, model=model, train_size=size, noise=scatter, n=600,
                            params={"k": k}, ended=T_END + 600 * k)
        if scale is not None:
            add_intervals(d, scatter, scale)
    ingest_all(ws)
    return ws


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
