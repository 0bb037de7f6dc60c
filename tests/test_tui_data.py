"""logg_tui.queries (every store query the TUI makes) against oracles: the run folders'
metrics.json written by the engine's evaluate(), and plain Python over the same rows."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest
from _tui_stores import FOLDER_RUNS, folder_workspace, metrics_json

from engine.errors import SpecError
from logg_tui import queries as data
from logg_tui.screens.r2_snr import ceiling_band


@pytest.fixture(scope="module")
def ws(tmp_path_factory):
    return folder_workspace(tmp_path_factory.mktemp("tui-data") / "ws")


def test_runs_page_metrics_equal_metrics_json(ws):
    page = data.runs_page(ws)
    assert page.total == len(FOLDER_RUNS) + 1 == len(page.rows)
    rows = {r[0]: dict(zip(page.columns, r)) for r in page.rows}
    for run_id, model, size, _, _ in FOLDER_RUNS:
        m = metrics_json(ws, run_id)["overall"]
        assert rows[run_id]["r2"] == pytest.approx(m["r2"], abs=1e-12)
        assert rows[run_id]["mae"] == pytest.approx(m["mae"], abs=1e-12)
        assert (rows[run_id]["model"], rows[run_id]["size"]) == (model, size)
        assert rows[run_id]["status"] == "finished"
    assert rows["r5-lgbm-failed"]["status"] == "failed" and rows["r5-lgbm-failed"]["r2"] is None
    # latest first by default: the failed run ended last
    assert page.rows[0][0] == "r5-lgbm-failed"


def test_runs_filter_where_and_sort(ws):
    everything = data.runs_page(ws)
    r2 = {r[0]: r[everything.columns.index("r2")] for r in everything.rows}
    lgbm = data.runs_page(ws, text="LGBM")
    assert {r[0] for r in lgbm.rows} == {"r2-lgbm-10k", "r3-lgbm-100k", "r5-lgbm-failed"}
    good = data.runs_page(ws, where="r2 > 0.7 AND model <> 'vit'")
    assert {r[0] for r in good.rows} == {k for k, v in r2.items()
                                         if v is not None and v > 0.7 and "vit" not in k}
    by_r2 = data.runs_page(ws, sort="r2", descending=True)
    vals = [r[by_r2.columns.index("r2")] for r in by_r2.rows]
    assert vals[:-1] == sorted(vals[:-1], reverse=True) and vals[-1] is None  # NULLS LAST
    page = data.runs_page(ws, sort="r2", limit=2)
    assert len(page.rows) == 2 and page.total == len(everything.rows)
    with pytest.raises(SpecError, match="no_such_column"):  # the screen shows it
        data.runs_page(ws, where="no_such_column > 1")


def test_run_detail_matches_the_run_folder(ws):
    d = data.run_detail(ws, "r1-ridge-100k")
    m = metrics_json(ws, "r1-ridge-100k")
    overall = d.overall[d.overall["subset"] == "all"].set_index("metric")
    assert overall.loc["r2", "value"] == pytest.approx(m["overall"]["r2"], abs=1e-12)
    assert overall.loc["r2", "lo"] == pytest.approx(m["overall"]["r2_lo"], abs=1e-12)
    assert overall.loc["mae", "hi"] == pytest.approx(m["overall"]["mae_hi"], abs=1e-12)
    assert len(d.bins) == len(m["bins"])
    assert len(d.sample) == 300  # fewer predictions than the sample size: all of them
    assert list(d.history["value"]) == pytest.approx([0.0, 0.1, 0.2])
    assert d.run["command"] == "logg-engine run ridge --size 100000"
    assert set(d.params["value"]) >= {100000.0}


def test_compare_shows_only_differing_keys_and_exact_deltas(ws):
    a, b = "r0-ridge-10k", "r1-ridge-100k"
    c = data.compare(ws, [a, b])
    assert set(c["config"]["key"]) == {"train_size", "param.alpha"}
    ma, mb = metrics_json(ws, a)["overall"], metrics_json(ws, b)["overall"]
    met = c["metrics"].set_index("metric")
    assert met.loc["r2", f"Δ {b}"] == pytest.approx(mb["r2"] - ma["r2"], abs=1e-12)
    assert met.loc["mae", f"Δ {b}"] == pytest.approx(mb["mae"] - ma["mae"], abs=1e-12)
    bins_a = {x["label"]: x["r2"] for x in metrics_json(ws, a)["bins"] if x["scheme"] == "snr"}
    bins_b = {x["label"]: x["r2"] for x in metrics_json(ws, b)["bins"] if x["scheme"] == "snr"}
    got = dict(zip(c["bins"]["label"], c["bins"][f"ΔR² {b}"]))
    assert got == pytest.approx({k: bins_b[k] - bins_a[k] for k in bins_a}, abs=1e-12)
    cross = data.compare(ws, [a, "r2-lgbm-10k"])
    assert set(cross["config"]["key"]) == {"model", "param.alpha", "param.learning_rate"}


def test_scaling_and_r2_vs_snr_with_ceiling(ws):
    sc = data.scaling(ws)
    assert sorted(zip(sc["model"], sc["train_size"])) == sorted(
        (m, s) for _, m, s, _, _ in FOLDER_RUNS)
    ids = data.default_snr_runs(ws)
    best = {}
    for run_id, model, *_ in FOLDER_RUNS:
        r2 = metrics_json(ws, run_id)["overall"]["r2"]
        best[model] = max(best.get(model, (-9, "")), (r2, run_id))
    assert set(ids) == {rid for _, rid in best.values()}
    rows, ceiling = data.r2_vs_snr(ws, ids)
    assert ceiling.empty
    band, source = ceiling_band(rows, ceiling)
    assert source == "bin_metrics r2_max"
    snr_bins = [x for x in metrics_json(ws, ids[0])["bins"] if x["scheme"] == "snr"]
    want = sorted(((b["lo"] + b["hi"]) / 2, min(b["r2_max"], b["r2_max_pop"]),
                   max(b["r2_max"], b["r2_max_pop"])) for b in snr_bins)
    got = [v for row in zip(*band) for v in row]
    assert got == pytest.approx([v for row in want for v in row], abs=1e-12)  # one test split


def test_user_query_is_read_only(ws):
    df, cut = data.user_query(ws, "SELECT model, count(*) AS n FROM runs GROUP BY model "
                                  "ORDER BY model")
    assert dict(zip(df["model"], df["n"])) == {"lgbm": 3, "ridge": 2, "vit": 1} and not cut
    df, cut = data.user_query(ws, "SELECT * FROM range(10)", limit=4)
    assert len(df) == 4 and cut
    with pytest.raises(SpecError, match="read-only"):
        data.user_query(ws, "DELETE FROM runs")
    assert data.runs_page(ws).total == len(FOLDER_RUNS) + 1
    names = set(data.store_objects(ws)["name"])
    assert set(data.VIEWS) <= names


def test_moe_tables_are_empty_without_analyses(ws):
    tables = data.moe_tables(ws)
    assert set(tables) == {"oracle", "moe_gate", "deleakage"}
    assert all(df.empty for df in tables.values())


HOLD = """
import sys, time, duckdb
con = duckdb.connect(sys.argv[1])   # read-write: other processes cannot open the file
print("held", flush=True)
time.sleep(float(sys.argv[2]))
"""


def test_a_held_store_is_store_busy_not_a_hang(ws):
    p = subprocess.Popen([sys.executable, "-c", HOLD, str(ws / "results.duckdb"), "8"],
                         stdout=subprocess.PIPE, text=True)
    try:
        assert p.stdout.readline().strip() == "held"
        t0 = time.monotonic()
        with pytest.raises(data.StoreBusy, match="another process"):
            data.runs_page(ws)
        assert time.monotonic() - t0 < data.LOCK_TIMEOUT_S + 2
    finally:
        p.kill()
        p.wait()
    assert data.runs_page(ws).total == len(FOLDER_RUNS) + 1


def test_ceiling_band_comes_from_the_ceiling_analysis(tmp_path):
    """A `ceiling` analysis computed by the engine (engine.analysis.ceiling on the same
    synthetic test split the runs were scored on), written and ingested by the engine;
    the band per SNR bin is r2_max_bin … r2_max_bayes of exactly those records."""
    from _runfolders import synthetic_test_split

    from engine.analysis import ceiling as C
    from engine.analysis.record import AnalysisResult, write_analysis
    from engine.store.ingest_analysis import ingest_analysis

    ws = folder_workspace(tmp_path / "ws")
    meta = synthetic_test_split(300, seed=0)
    recs = C.dataset_records(meta)
    folder = write_analysis(ws, AnalysisResult("ceiling", {"dataset": "default"}, recs))
    ingest_analysis(ws, folder)
    rows, ceiling = data.r2_vs_snr(ws, ["r1-ridge-100k"])
    band, source = ceiling_band(rows, ceiling)
    assert source.startswith("analysis ceiling-")
    snr = sorted((r for r in recs if r.get("scheme") == "snr"), key=lambda r: r["lo"])
    want = [((r["lo"] + r["hi"]) / 2, min(r["r2_max_bin"], r["r2_max_bayes"]),
             max(r["r2_max_bin"], r["r2_max_bayes"])) for r in snr]
    got = [v for row in zip(*band) for v in row]
    assert got == pytest.approx([v for row in want for v in row], abs=1e-9)
    assert all(lo <= hi for _, lo, hi in want)
