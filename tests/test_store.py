"""The results store on a real DuckDB file: schema/versioning, ingest values, idempotence,
status rules, change detection, foreign files, migrations, readers."""

from __future__ import annotations

import hashlib
import json
import os
import time

import duckdb
import numpy as np
import pandas as pd
import pytest

from _runfolders import FINGERPRINT, make_run_folder
from engine.errors import StoreError
from engine.paths import store_path
from engine.store import connect as C
from engine.store.ingest import ingest_all, ingest_run
from engine.store.connect import connect_ro
from engine.store.reader import StoreReader, find_finished_run


def scaling_table(ws, dataset=None):
    with StoreReader(ws) as r:
        return r.scaling_curve(dataset=dataset)

TABLES = ("schema_meta", "datasets", "runs", "run_params", "metric_history", "run_metrics",
          "bin_metrics", "predictions", "analyses", "analysis_rows", "run_facts")


def snapshot(ws) -> dict[str, list]:
    """Every table's full contents (volatile timestamps excluded), order-independent."""
    out = {}
    with connect_ro(ws) as con:
        for t in TABLES:
            cols = [r[0] for r in con.execute(f"DESCRIBE {t}").fetchall()
                    if r[0] not in ("ingested", "applied", "first_seen")]
            out[t] = con.execute(f"SELECT {', '.join(cols)} FROM {t} ORDER BY ALL").fetchall()
    return out


def sha(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_fresh_store_has_the_schema_and_its_version(_isolated_workspace):
    ws = _isolated_workspace
    ingest_all(ws)  # no runs yet: creates the store
    with connect_ro(ws) as con:
        versions = [r[0] for r in con.execute("SELECT version FROM schema_meta "
                                              "ORDER BY version").fetchall()]
        names = {r[0] for r in con.execute("SELECT table_name FROM "
                                           "information_schema.tables").fetchall()}
    # base schema (1) then every migration, in order
    assert versions == [1, *(n for n, _ in C.migrations())]
    assert versions[-1] == C.schema_version() == max(n for n, _ in C.migrations()) == 6
    assert set(TABLES) | {"leaderboard", "scaling_curve", "r2_vs_snr", "bin_table"} <= names
    assert "moe_experts" not in names  # never written; dropped by migration 004
    assert not list(ws.glob(".results.duckdb.*"))  # built aside, renamed into place


def test_ingest_stores_the_run_folder_values(_isolated_workspace):
    ws = _isolated_workspace
    d = make_run_folder(ws, "r1", params={"alpha": 5000.0, "fit_intercept": True,
                                          "solver": {"name": "svd", "tol": 1}})
    assert ingest_run(ws, d) is True
    metrics = json.loads((d / "metrics.json").read_text())
    preds = pd.read_parquet(d / "predictions.parquet")
    with connect_ro(ws) as con:
        run = con.execute("SELECT status, model, train_size, dataset_fingerprint, duration_s, "
                          "command, git_sha, peak_rss_mb FROM runs").fetchone()
        r2 = con.execute("SELECT value, lo, hi FROM run_metrics WHERE metric='r2' AND "
                         "subset='all'").fetchone()
        cov = con.execute("SELECT value FROM run_metrics WHERE metric='n' AND "
                          "subset='covered'").fetchone()[0]
        got = con.execute("SELECT idx, y_true, y_pred, snr, crlb_log_g FROM predictions "
                          "ORDER BY idx").df()
        bins = con.execute("SELECT scheme, bin, n, r2 FROM bin_metrics ORDER BY scheme, bin").df()
        params = dict(con.execute("SELECT key, value_type FROM run_params").fetchall())
        hist = con.execute("SELECT step, name, value FROM metric_history ORDER BY step").fetchall()
        ds = con.execute("SELECT fingerprint, n_test FROM datasets").fetchall()
    assert run == ("finished", "ridge", 10_000, FINGERPRINT, pytest.approx(30.0),
                   "logg-engine run ridge --size 10000", "abc123", 123.0)
    o = metrics["overall"]
    assert r2 == pytest.approx((o["r2"], o["r2_lo"], o["r2_hi"]))
    assert cov == metrics["extra"]["subsets"]["covered"]["n"]
    np.testing.assert_array_equal(got["idx"], preds["idx"])
    np.testing.assert_allclose(got["y_pred"], preds["y_pred"])
    np.testing.assert_allclose(got["crlb_log_g"], preds["crlb_log_g"])
    assert len(bins) == len(metrics["bins"]) == 29
    snr0 = next(b for b in metrics["bins"] if b["scheme"] == "snr" and b["bin"] == 0)
    assert bins.query("scheme == 'snr' and bin == 0")["r2"].iloc[0] == pytest.approx(snr0["r2"])
    assert params == {"alpha": "float", "fit_intercept": "bool", "solver.name": "str",
                      "solver.tol": "int"}
    assert [h[0] for h in hist] == [0, 1, 2] and hist[2][2] == pytest.approx(0.2)
    assert ds == [(FINGERPRINT, 300)]


def test_ingest_twice_leaves_identical_tables(_isolated_workspace):
    ws = _isolated_workspace
    make_run_folder(ws, "a", model="ridge")
    make_run_folder(ws, "b", model="lgbm", noise=0.4)
    make_run_folder(ws, "c", status="failed")
    first = ingest_all(ws)
    before = snapshot(ws)
    again = ingest_all(ws)
    assert sorted(first.ingested) == ["a", "b", "c"] and again.ingested == []
    assert again.unchanged == 3
    forced = ingest_all(ws, force=True)  # delete-then-insert of every run
    assert sorted(forced.ingested) == ["a", "b", "c"]
    assert snapshot(ws) == before


def test_changed_folder_is_reingested(_isolated_workspace):
    ws = _isolated_workspace
    d = make_run_folder(ws, "a")
    ingest_all(ws)
    ev = json.loads((d / "metrics.json").read_text())
    ev["overall"]["r2"] = 0.123
    (d / "metrics.json").write_text(json.dumps(ev))
    assert ingest_all(ws).ingested == ["a"]
    with connect_ro(ws) as con:
        assert con.execute("SELECT r2 FROM run_overall WHERE subset='all'").fetchone()[0] == 0.123


def test_status_rules_without_an_end_event(_isolated_workspace):
    ws = _isolated_workspace
    make_run_folder(ws, "dead", status=None)                       # pid cannot exist
    make_run_folder(ws, "live", status=None, pid=os.getpid())      # fresh heartbeat
    make_run_folder(ws, "hung", status=None, pid=os.getpid(), last_event_age=120)
    make_run_folder(ws, "boom", status="failed")
    make_run_folder(ws, "queued", status=None, queued=True)
    make_run_folder(ws, "stuck", status=None, queued=True, last_event_age=120)
    ingest_all(ws)
    with connect_ro(ws) as con:
        got = dict(con.execute("SELECT run_id, status FROM runs").fetchall())
        err = con.execute("SELECT error FROM runs WHERE run_id='boom'").fetchone()[0]
        n_pred = con.execute("SELECT count(*) FROM predictions").fetchone()[0]
    assert got == {"dead": "lost", "live": "running", "hung": "lost", "boom": "failed",
                   "queued": "queued", "stuck": "lost"}
    assert err == "boom" and n_pred == 0
    # a running run is re-checked on every ingest even though its files did not change
    assert ingest_all(ws).ingested == ["live", "queued"]


def test_torn_last_event_line_is_ignored(_isolated_workspace):
    ws = _isolated_workspace
    d = make_run_folder(ws, "a")
    with open(d / "events.jsonl", "a") as fh:
        fh.write('{"t": 1, "event": "heartb')
    ingest_run(ws, d)
    with connect_ro(ws) as con:
        assert con.execute("SELECT status FROM runs").fetchone()[0] == "finished"


def test_bad_run_folder_is_reported_and_others_still_land(_isolated_workspace):
    ws = _isolated_workspace
    make_run_folder(ws, "good")
    bad = make_run_folder(ws, "bad")
    (bad / "run.json").write_text("{not json")
    rep = ingest_all(ws)
    assert rep.ingested == ["good"]
    assert len(rep.errors) == 1 and "run.json" in rep.errors[0][1]
    with pytest.raises(StoreError, match="unreadable JSON"):
        ingest_run(ws, bad)


@pytest.mark.parametrize("content", [os.urandom(4096), b"hello, I am a text file\n" * 50])
def test_foreign_file_at_store_path_is_refused_untouched(_isolated_workspace, content):
    ws = _isolated_workspace
    ws.mkdir(parents=True)
    path = store_path(ws)
    path.write_bytes(content)
    before = sha(path)
    d = make_run_folder(ws, "a")
    with pytest.raises(StoreError, match="not a DuckDB database"):
        ingest_run(ws, d)
    with pytest.raises(StoreError, match="not a DuckDB database"):
        with connect_ro(ws):
            pass
    assert sha(path) == before
    assert sorted(p.name for p in ws.iterdir()) == ["results.duckdb", "results.duckdb.lock",
                                                    "runs"]


def test_foreign_duckdb_file_is_refused_untouched(_isolated_workspace):
    ws = _isolated_workspace
    ws.mkdir(parents=True)
    path = store_path(ws)
    con = duckdb.connect(str(path))
    con.execute("CREATE TABLE someone_elses (x INTEGER); INSERT INTO someone_elses VALUES (1)")
    con.close()
    before, mtime = sha(path), path.stat().st_mtime_ns
    with pytest.raises(StoreError, match="no schema_meta"):
        ingest_run(ws, make_run_folder(ws, "a"))
    assert sha(path) == before and path.stat().st_mtime_ns == mtime


def test_migrations_apply_in_order(_isolated_workspace, tmp_path):
    ws = _isolated_workspace
    ingest_all(ws)
    latest = C.schema_version()
    mig = tmp_path / "mig"
    mig.mkdir()
    (mig / "901_add_note.sql").write_text("ALTER TABLE runs ADD COLUMN note VARCHAR;")
    (mig / "902_extra.sql").write_text("CREATE TABLE extra_t (a INTEGER);")
    (mig / "notes.sql").write_text("-- not a migration (no number)")
    assert [n for n, _ in C.migrations(mig)] == [901, 902]
    with C.store_lock(ws):
        con = duckdb.connect(str(store_path(ws)))
        try:
            assert C.migrate(con, store_path(ws), latest, mig) == 902
            assert C.migrate(con, store_path(ws), 902, mig) == 902  # nothing left to apply
            cols = [r[0] for r in con.execute("DESCRIBE runs").fetchall()]
            versions = [r[0] for r in con.execute("SELECT version FROM schema_meta "
                                                  "ORDER BY version").fetchall()]
        finally:
            con.close()
    assert "note" in cols and versions[-2:] == [901, 902]
    with pytest.raises(StoreError, match="newer than this engine"):  # 902 > what we ship
        with connect_ro(ws):
            pass


def test_an_old_store_is_migrated_on_the_next_ingest(_isolated_workspace):
    ws = _isolated_workspace
    ingest_all(ws)
    with C.store_lock(ws):  # make it look like a store written before migration 002
        con = duckdb.connect(str(store_path(ws)))
        con.execute("DELETE FROM schema_meta WHERE version > 1")
        con.execute("DROP VIEW moe_bins")
        con.close()
    ingest_run(ws, make_run_folder(ws, "a"))
    with connect_ro(ws) as con:
        assert con.execute("SELECT max(version) FROM schema_meta").fetchone()[0] == \
            C.schema_version()
        assert con.execute("SELECT count(*) FROM moe_bins").fetchone()[0] == 0
        assert con.execute("SELECT count(*) FROM runs").fetchone()[0] == 1


def test_readers(_isolated_workspace):
    ws = _isolated_workspace
    assert find_finished_run(ws, model="ridge", config_hash="x", dataset_fingerprint="f",
                             train_size=1, noise_level=1.0, seed=0, test_split="test") is None
    with pytest.raises(StoreError, match="no results yet") as exc:
        scaling_table(ws)
    assert "logg-engine run ridge --size 10k" in exc.value.render()
    now = time.time()
    make_run_folder(ws, "old", ended=now - 100)
    make_run_folder(ws, "new", ended=now)
    make_run_folder(ws, "big", train_size=50_000)
    make_run_folder(ws, "fail", status="failed")
    ingest_all(ws)
    key = dict(model="ridge", config_hash="cfg-ridge-null", dataset_fingerprint=FINGERPRINT,
               train_size=10_000, noise_level=1.0, seed=0, test_split="test")
    assert find_finished_run(ws, **key) == "new"
    assert find_finished_run(ws, **{**key, "seed": 1}) is None
    tab = scaling_table(ws)
    assert list(tab["run_id"]) == ["new", "big"]
    assert list(tab.columns[:4]) == ["model", "dataset", "noise_level", "train_size"]
    assert scaling_table(ws, dataset="other").empty


def test_predictions_without_optional_columns_and_torn_parquet(_isolated_workspace):
    ws = _isolated_workspace
    d = make_run_folder(ws, "slim")
    full = pd.read_parquet(d / "predictions.parquet")
    full[["idx", "y_true", "y_pred", "snr"]].to_parquet(d / "predictions.parquet", index=False)
    ingest_run(ws, d)
    with connect_ro(ws) as con:
        got = con.execute("SELECT count(*), count(crlb_log_g), count(snr), sum(y_true) "
                          "FROM predictions").fetchone()
    assert got[:3] == (300, 0, 300) and got[3] == pytest.approx(full["y_true"].sum())
    torn = make_run_folder(ws, "torn")
    data = (torn / "predictions.parquet").read_bytes()
    (torn / "predictions.parquet").write_bytes(data[: len(data) // 2])
    with pytest.raises(StoreError, match="unreadable parquet"):
        ingest_run(ws, torn)
    with connect_ro(ws) as con:  # the failed transaction left nothing behind
        assert con.execute("SELECT count(*) FROM runs WHERE run_id = 'torn'").fetchone()[0] == 0
    odd = make_run_folder(ws, "odd")  # a column DuckDB cannot cast: a per-folder error
    full.assign(y_pred="not a number").to_parquet(odd / "predictions.parquet", index=False)
    rep = ingest_all(ws)
    assert rep.ingested == []
    assert sorted(p.rsplit("/", 1)[-1] for p, _ in rep.errors) == ["odd", "torn"]
    assert any("could not ingest" in msg for _, msg in rep.errors)
