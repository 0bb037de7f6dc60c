"""`logg-engine ingest | runs ls/show/compare | query | report` on a real store built from
real run folders; values checked against the run folders' metrics.json."""

from __future__ import annotations

import io
import json
import re

import duckdb
import pandas as pd
import pytest
from typer.testing import CliRunner

import engine.cli.results  # noqa: F401  (registers the commands)
from _runfolders import make_run_folder
from engine.cli.app import app
from engine.paths import store_path
from engine.store.connect import store_lock

runner = CliRunner()


def cli(*args):
    return runner.invoke(app, list(args))


@pytest.fixture
def ws(_isolated_workspace):
    ws = _isolated_workspace
    for k, size in enumerate((10_000, 50_000, 100_000)):
        make_run_folder(ws, f"ridge-{size}", model="ridge", train_size=size,
                        noise=0.70 - 0.001 * k, params={"alpha": 5000.0})
        make_run_folder(ws, f"lgbm-{size}", model="lgbm", train_size=size,
                        noise=0.65 - 0.08 * k, params={"n_estimators": 100, "lr": 0.05 * (k + 1)})
    make_run_folder(ws, "broken", status="failed")
    return ws


def metrics(ws, run_id):
    return json.loads((ws / "runs" / run_id / "metrics.json").read_text())


def test_missing_store_is_a_clear_error(_isolated_workspace):
    for args in (["runs", "ls"], ["query", "SELECT 1"], ["report"], ["runs", "show", "x"]):
        res = cli(*args)
        assert res.exit_code == 4, res.output
        assert "no results yet" in res.output
        assert "logg-engine run ridge --size 10k" in res.output


def test_ingest_then_list(ws):
    res = cli("ingest")
    assert res.exit_code == 0 and "ingested 7 run(s), 0 unchanged" in res.output
    assert "ingested 0 run(s), 7 unchanged" in cli("ingest").output
    assert "ingested 1 run(s)" in cli("ingest", "--force", "lgbm-10000").output
    rows = json.loads(cli("runs", "ls", "--json").output)
    assert len(rows) == 7
    by_id = {r["run_id"]: r for r in rows}
    m = metrics(ws, "lgbm-50000")["overall"]
    assert by_id["lgbm-50000"]["r2"] == pytest.approx(m["r2"])
    assert by_id["lgbm-50000"]["r2_lo"] == pytest.approx(m["r2_lo"])
    assert by_id["broken"]["status"] == "failed" and by_id["broken"]["r2"] is None
    only = json.loads(cli("runs", "ls", "--model", "lgbm", "--json").output)
    assert sorted(r["run_id"] for r in only) == ["lgbm-10000", "lgbm-100000", "lgbm-50000"]
    failed = pd.read_csv(io.StringIO(cli("runs", "ls", "--status", "failed", "--csv").output))
    assert list(failed["run_id"]) == ["broken"]
    assert cli("runs", "ls", "--json", "--csv").exit_code != 0
    assert "ridge-10000" in cli("runs", "ls").output


def test_ingest_rejects_a_non_run_folder(ws):
    res = cli("ingest", "no-such-run")
    assert res.exit_code == 4 and "no run.json" in res.output


def test_show_and_compare(ws):
    cli("ingest")
    info = json.loads(cli("runs", "show", "ridge-5", "--json").output)  # unique prefix
    m = metrics(ws, "ridge-50000")
    assert info["run_id"] == "ridge-50000"
    assert info["reproduce"] == "logg-engine run ridge --size 50000"
    assert info["params"] == {"alpha": 5000.0}
    r2 = info["metrics"]["all"]["r2"]
    assert (r2["value"], r2["lo"], r2["hi"]) == pytest.approx(
        (m["overall"]["r2"], m["overall"]["r2_lo"], m["overall"]["r2_hi"]))
    assert [b["label"] for b in info["snr_bins"]] == [b["label"] for b in m["bins"]
                                                      if b["scheme"] == "snr"]
    assert cli("runs", "show", "ridge").exit_code == 2  # ambiguous prefix
    text = cli("runs", "show", "ridge-50000").output
    assert "reproduce: logg-engine run ridge --size 50000" in text

    cmp = json.loads(cli("runs", "compare", "lgbm-10000", "lgbm-100000", "--json").output)
    assert set(cmp["config_diff"]) == {"train_size", "config_hash", "params.lr"}
    assert cmp["config_diff"]["params.lr"] == {"a": 0.05, "b": pytest.approx(0.15)}
    a, b = metrics(ws, "lgbm-10000")["overall"], metrics(ws, "lgbm-100000")["overall"]
    assert cmp["metrics"]["r2"]["delta"] == pytest.approx(b["r2"] - a["r2"])
    assert cmp["metrics"]["mae"]["b_hi"] == pytest.approx(b["mae_hi"])
    assert cmp["comparable"] is True
    assert "configuration differences" in cli("runs", "compare", "lgbm-10000",
                                              "lgbm-100000").output


def test_query_is_read_only(ws):
    cli("ingest")
    out = json.loads(cli("query", "SELECT model, count(*) AS n FROM runs WHERE "
                                  "status = 'finished' GROUP BY 1 ORDER BY 1", "--json").output)
    assert out == [{"model": "lgbm", "n": 3}, {"model": "ridge", "n": 3}]
    csv = pd.read_csv(io.StringIO(cli("query", "SELECT * FROM r2_vs_snr", "--csv").output))
    assert len(csv) == 6 * 8 and {"r2", "r2_max", "snr_mid"} <= set(csv.columns)
    before = store_path(ws).read_bytes()
    for sql in ("DROP TABLE runs", "INSERT INTO runs (run_id) VALUES ('x')",
                "DELETE FROM predictions", "CREATE TABLE t (a INT)"):
        res = cli("query", sql)
        assert res.exit_code == 2, (sql, res.output)
        assert "read-only" in res.output
    res = cli("query", f"COPY runs TO '{ws / 'dump.csv'}'")
    assert res.exit_code == 2 and "cannot read or write files" in res.output
    assert not (ws / "dump.csv").exists()
    assert store_path(ws).read_bytes() == before
    res = cli("query", "SELEC nonsense")
    assert res.exit_code == 2 and "SQL error" in res.output


def test_report_is_computed_from_the_store(ws, tmp_path):
    cli("ingest")
    out = tmp_path / "report.md"
    res = cli("report", "--out", str(out))
    assert res.exit_code == 0, res.output
    text = out.read_text()
    best = max(("lgbm-100000", "lgbm-50000", "ridge-100000"),
               key=lambda r: metrics(ws, r)["overall"]["r2"])
    m = metrics(ws, best)["overall"]
    assert f"**Best overall: {best.split('-')[0]}** at 100k (R² {m['r2']:.3f}" in text
    for run in ("ridge-10000", "lgbm-50000"):
        o = metrics(ws, run)["overall"]
        assert re.search(re.escape(f"{o['r2']:.3f} [{o['r2_lo']:.3f}, {o['r2_hi']:.3f}] | "
                                   f"{o['mae']:.3f} |") + r"[^\n]*" + re.escape(f"`{run}`"), text)
    r10, r100 = (metrics(ws, f"ridge-{s}")["overall"]["r2"] for s in (50_000, 100_000))
    verdict = "saturates" if abs(r100 - r10) < 0.01 else \
        ("no gain" if r100 - r10 < 0 else "still improving")
    assert re.search(rf"\*\*ridge\*\*: .*{verdict}", text)
    snr = next(b for b in metrics(ws, "lgbm-100000")["bins"] if b["scheme"] == "snr")
    assert (f"| {snr['label']} | {snr['n']} | {snr['r2_max']:.3f} | {snr['r2']:.3f} | "
            f"{snr['eta']:.2f} |") in text  # R²_max, then lgbm (100k) R² and η
    assert "run `logg-engine deleakage --dataset default`" in text
    # sections for later issues appear once their tables have rows
    with store_lock(ws):
        con = duckdb.connect(str(store_path(ws)))
        con.execute("INSERT INTO analyses VALUES ('dl-1', 'deleakage', NULL, "
                    "'{\"dataset\": \"default\"}', now())")
        for k, (strategy, nf, snr_r2) in enumerate((("S0_baseline", 4096, 0.974),
                                                     ("S4_snr_only", 1, 0.805))):
            extra = json.dumps({"strategy": strategy})
            con.execute("INSERT INTO analysis_rows VALUES ('dl-1', ?, ?, 'n_features', ?, "
                        "NULL, NULL, ?), ('dl-1', ?, ?, 'snr_r2_test', ?, NULL, NULL, ?)",
                        [2 * k, strategy, nf, extra, 2 * k + 1, strategy, snr_r2, extra])
        con.close()
    text = cli("report").output
    assert "analysis `dl-1`" in text  # rows without a definition or pass flag show —
    assert "| S4_snr_only | 1 | — | 0.805 | — |" in text
    assert "| S0_baseline | 4096 | — | 0.974 | — |" in text
    assert cli("report", "--dataset", "nope").exit_code == 4
