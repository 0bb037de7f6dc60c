"""run_facts (migration 003): metrics.json `extra` lands in the store at ingest, so the
report reads n_params / train seconds from the store only. Real run folders (the runner's
format, metrics.json from the real `evaluate()`), a real DuckDB store; the oracle is the
JSON written into the folder."""

from __future__ import annotations

import json
import math
import shutil

import duckdb
import pandas as pd
import pytest

from _runfolders import make_run_folder
from engine.paths import store_path
from engine.store import connect as C
from engine.store.ingest import ingest_all, ingest_run
from engine.store.connect import connect_ro
from engine.report.document import build_report

VIT_FACTS = {"n_params": 4_321_987, "best_epoch": 7, "best_val_r2": 0.8125,
             "epochs_trained": 12, "device": "cuda:0", "samples_per_s": 15234.5,
             "stopped": True, "history_lr": [0.001, 0.0005], "opt": {"betas": [0.9, 0.999],
                                                                    "eps": 1e-8}}
TOP = {"train_seconds": 123.25, "predict_seconds": 4.5, "n_train": 10_000, "n_test": 300,
       "peak_rss_mb": 2048.0}


def _vit_run(ws, run_id="vit-10000", train_size=10_000):
    """A ViT run folder whose metrics.json `extra` holds what the runner writes (top-level
    timings + the adapter's describe() under `model`), beside evaluate()'s `subsets`."""
    d = make_run_folder(ws, run_id, model="vit", train_size=train_size, noise=0.3,
                        params={"patch_size": 16, "hidden_size": 256})
    m = json.loads((d / "metrics.json").read_text())
    assert m["extra"]["subsets"]  # evaluate() wrote the covered subset: must be skipped
    m["extra"].update(TOP, model=VIT_FACTS)
    (d / "metrics.json").write_text(json.dumps(m))
    return d


def _facts(ws, run_id):
    with connect_ro(ws) as con:
        return {k: (t, n, x) for k, t, n, x in con.execute(
            "SELECT key, value_type, num_value, text_value FROM run_facts WHERE run_id = ?",
            [run_id]).fetchall()}


def _expected(extra: dict):
    """The JSON above flattened by hand: dotted keys, lists as JSON text; plus the facts
    evaluate() itself records in `extra` (protocol version, bootstrap settings, ...)."""
    e = {k: ("int" if isinstance(v, int) else "float", float(v)) for k, v in TOP.items()}
    e.update({"protocol_version": ("int", 1.0), "n_boot": ("int", 50.0),
              "seed": ("int", 0.0), "n_nonfinite_pred": ("int", 0.0),
              "var_pop": ("float", extra["var_pop"]), "ci": ("str", None),
              "edge_convention": ("str", None), "skipped_schemes": ("json", None)})
    e.update({"model.n_params": ("int", 4_321_987.0), "model.best_epoch": ("int", 7.0),
              "model.best_val_r2": ("float", 0.8125), "model.epochs_trained": ("int", 12.0),
              "model.samples_per_s": ("float", 15234.5), "model.stopped": ("bool", 1.0),
              "model.device": ("str", None), "model.history_lr": ("json", None),
              "model.opt.betas": ("json", None), "model.opt.eps": ("float", 1e-8)})
    return e


def test_ingest_stores_extra_as_dotted_facts(_isolated_workspace):
    ws = _isolated_workspace
    d = _vit_run(ws)
    ingest_run(ws, d)
    extra = json.loads((d / "metrics.json").read_text())["extra"]
    got = _facts(ws, "vit-10000")
    want = _expected(extra)
    assert set(got) == set(want)  # no `subsets.*`, nothing invented
    for key, (vtype, num) in want.items():
        assert got[key][0] == vtype, key
        assert got[key][1] == num, key
    assert got["model.device"][2] == "cuda:0"
    assert json.loads(got["model.history_lr"][2]) == [0.001, 0.0005]
    assert json.loads(got["model.opt.betas"][2]) == [0.9, 0.999]
    assert got["model.stopped"][2] == "true"
    assert got["ci"][2] == extra["ci"] and got["skipped_schemes"][2] == "[]"
    assert 1.0 < extra["var_pop"] < 2.5  # labels on 1..5 in 0.5 steps
    with connect_ro(ws) as con:
        s = con.execute("SELECT n_params, best_epoch, train_seconds, predict_seconds, n_train, "
                        "device, r2 FROM run_summary WHERE run_id = 'vit-10000'").fetchone()
        r2 = con.execute("SELECT r2 FROM run_overall WHERE run_id = 'vit-10000' "
                         "AND subset = 'all'").fetchone()[0]
    assert s[:6] == (4_321_987, 7, 123.25, 4.5, 10_000, "cuda:0") and s[6] == r2
    assert 0.5 < r2 < 1.0  # scatter 0.3 dex on labels 1..5: a real, good R²


def test_reingest_replaces_facts_without_duplicates(_isolated_workspace):
    ws = _isolated_workspace
    d = _vit_run(ws)
    ingest_run(ws, d)
    before = _facts(ws, "vit-10000")
    assert ingest_run(ws, d) is False  # unchanged folder: skipped
    assert ingest_run(ws, d, force=True) is True
    with connect_ro(ws) as con:
        n, distinct = con.execute("SELECT count(*), count(DISTINCT key) FROM run_facts "
                                  "WHERE run_id = 'vit-10000'").fetchone()
    assert n == distinct == len(before) >= len(TOP) + len(VIT_FACTS)
    assert _facts(ws, "vit-10000") == before
    m = json.loads((d / "metrics.json").read_text())  # a rerun's new facts replace the old
    m["extra"]["model"] = {"n_params": 99}
    (d / "metrics.json").write_text(json.dumps(m))
    ingest_run(ws, d, force=True)
    got = _facts(ws, "vit-10000")
    assert got["model.n_params"][1] == 99.0 and "model.best_epoch" not in got


def test_non_finite_and_missing_extra(_isolated_workspace):
    ws = _isolated_workspace
    d = make_run_folder(ws, "ridge-10000")
    m = json.loads((d / "metrics.json").read_text())
    m["extra"] = {"train_seconds": float("nan"), "model": {}, "subsets": m["extra"]["subsets"]}
    (d / "metrics.json").write_text(json.dumps(m))  # json writes NaN, as Python's json reads
    ingest_run(ws, d)
    assert _facts(ws, "ridge-10000") == {"train_seconds": ("float", None, "nan")}
    m.pop("extra")
    (d / "metrics.json").write_text(json.dumps(m))
    ingest_run(ws, d, force=True)
    assert _facts(ws, "ridge-10000") == {}


def _config_block(text: str, model: str) -> str:
    start = text.index(f"### {model} (")
    return text[start:text.index("```\n", text.index("```yaml", start))]


def test_report_reads_n_params_from_the_store_after_the_folder_is_gone(_isolated_workspace):
    ws = _isolated_workspace
    make_run_folder(ws, "ridge-10000", model="ridge", train_size=10_000)
    d = _vit_run(ws)
    ingest_all(ws)
    shutil.rmtree(d)
    assert not d.exists()
    cfg = _config_block(build_report(ws), "vit")
    assert "n_params: 4321987\n" in cfg
    assert "best_epoch: 7\n" in cfg and "train_time_s: 123.2\n" in cfg
    assert "predict_time_s: 4.5\n" in cfg and "metrics.json" not in cfg
    ridge = _config_block(build_report(ws), "ridge")  # no facts recorded: no fact lines
    assert "n_params" not in ridge and "train_time_s" not in ridge


def _downgrade_to_v2(ws):
    """Make the store look like one written by an engine that stopped at migration 002."""
    with C.store_lock(ws):
        con = duckdb.connect(str(store_path(ws)))
        try:
            con.execute("DROP VIEW run_summary")
            con.execute("DROP TABLE run_facts")
            con.execute("DELETE FROM schema_meta WHERE version > 2")
        finally:
            con.close()


def test_a_v2_store_upgrades_and_the_next_ingest_fills_run_facts(_isolated_workspace):
    ws = _isolated_workspace
    assert C.schema_version() >= 3
    _vit_run(ws)
    ingest_all(ws)
    _downgrade_to_v2(ws)
    with connect_ro(ws) as con:  # read-only: not migrated, and the report still renders
        assert con.execute("SELECT max(version) FROM schema_meta").fetchone()[0] == 2
    cfg = _config_block(build_report(ws), "vit")
    assert "n_params" not in cfg and "run: vit-10000" in cfg
    report = ingest_all(ws)  # no --force: the migration cleared the change signatures
    assert report.ingested == ["vit-10000"] and report.unchanged == 0
    with connect_ro(ws) as con:
        versions = [r[0] for r in con.execute("SELECT version FROM schema_meta "
                                              "ORDER BY version").fetchall()]
        n_params = con.execute("SELECT n_params FROM run_summary").fetchone()[0]
    assert versions == [1, *(n for n, _ in C.migrations())] and 3 in versions
    assert n_params == 4_321_987
    assert _facts(ws, "vit-10000")["train_seconds"] == ("float", 123.25, "123.25")
    assert ingest_all(ws).unchanged == 1  # signatures are back: the next ingest skips it
    assert "n_params: 4321987" in _config_block(build_report(ws), "vit")


@pytest.mark.parametrize("value", [math.inf, -math.inf])
def test_infinite_facts_have_no_number(_isolated_workspace, value):
    ws = _isolated_workspace
    d = make_run_folder(ws, "ridge-10000")
    m = json.loads((d / "metrics.json").read_text())
    m["extra"] = {"model": {"val_l2_best": value, "best_iteration": 40}}
    (d / "metrics.json").write_text(json.dumps(m))
    ingest_run(ws, d)
    got = _facts(ws, "ridge-10000")
    assert got["model.val_l2_best"][:2] == ("float", None)
    assert got["model.best_iteration"] == ("int", 40.0, "40")


def test_export_research_scaling_files_carry_the_runs_facts(_isolated_workspace):
    """`export research`: vit_scaling_summary.json and the Ridge / LightGBM CSVs read the
    leaderboard plus the facts the runs recorded (the α chosen, the trees kept, n_params)."""
    from engine.analysis.export import export_research

    ws = _isolated_workspace
    facts = {"ridge": {"alpha": 3162.5}, "lgbm": {"best_iteration": 417},
             "vit": {"n_params": 4321, "best_epoch": 12}}
    for model, model_facts in facts.items():
        d = make_run_folder(ws, f"{model}-50000", model=model, train_size=50_000,
                            params={"alpha": 1e5} if model == "ridge" else {})
        m = json.loads((d / "metrics.json").read_text())
        m["extra"]["model"] = model_facts
        (d / "metrics.json").write_text(json.dumps(m))
    ingest_all(ws)
    done = export_research(ws, ws / "export")
    assert {done[f"results/{p}"] for p in ("vit_scaling_summary.json",
            "scaling_ml_ceiling/ridge_results.csv",
            "scaling_ml_ceiling/lightgbm_results.csv")} == {"written"}
    with duckdb.connect(str(ws / "results.duckdb"), read_only=True) as con:
        r2 = dict(con.execute("SELECT model, r2 FROM leaderboard").fetchall())
    res = ws / "export" / "results"
    vit = json.loads((res / "vit_scaling_summary.json").read_text())["results"]
    assert [(v["data_size"], v["n_params"], v["best_epoch"]) for v in vit] == [(50_000, 4321,
                                                                                 12)]
    assert vit[0]["test_r2"] == pytest.approx(r2["vit"])
    ridge = pd.read_csv(res / "scaling_ml_ceiling/ridge_results.csv")
    lgbm = pd.read_csv(res / "scaling_ml_ceiling/lightgbm_results.csv")
    assert ridge["Alpha"].tolist() == [3162.5] and lgbm["Actual Trees"].tolist() == [417]
    assert ridge["Test R²"].iloc[0] == pytest.approx(r2["ridge"])
