"""The ONLY writer of the results store.

Each run is written in one short transaction: delete every row of that run_id, insert the
fresh rows. Re-ingesting an unchanged folder therefore leaves the tables identical
(idempotent), and a crash mid-way leaves the previous state (the transaction rolls back).
Writers serialise on a file lock; DuckDB lock conflicts with readers are retried."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, UTC
from pathlib import Path

from engine.errors import StoreError
from engine.events import Callbacks, emit
from engine.paths import runs_dir
from engine.paths import workspace as resolve_ws
from engine.store.connect import DEFAULT_TIMEOUT_S, open_rw, store_lock
from engine.store.ingest_uncertainty import write_uncertainty
from engine.store.runfolder import (PRED_COLUMNS, RunRecord, read_run_folder, state_signature,
                                    typed_params)
from engine.store.transaction import transaction

PER_RUN_TABLES = ("run_params", "run_facts", "metric_history", "run_metrics", "bin_metrics",
                  "uq_coverage", "uq_scores", "predictions", "runs")
RUN_COLUMNS = ("run_id", "model", "preset", "config_hash", "dataset_fingerprint",
               "dataset_name", "dataset_path", "train_size", "noise_level", "seed",
               "test_split", "val_split", "status", "error", "created", "started", "ended",
               "duration_s", "last_event", "host", "pid", "git_sha", "git_dirty", "command",
               "peak_rss_mb", "device", "versions", "spec", "run_dir", "ingested", "state_sig")
BIN_COLUMNS = ("scheme", "bin", "label", "lo", "hi", "n", "r2", "r2_lo", "r2_hi", "mae",
               "rmse", "bias", "r2_max", "r2_max_pop", "eta")
CI_KEYS = {"r2": ("r2_lo", "r2_hi"), "mae": ("mae_lo", "mae_hi")}


@dataclass
class IngestReport:
    """What `ingest_all` did: run ids written, how many folders were unchanged, and the
    folders it could not read (path, message) — one bad folder never stops the rest."""

    ingested: list[str] = field(default_factory=list)
    unchanged: int = 0
    errors: list[tuple[str, str]] = field(default_factory=list)


def ingest_run(workspace: Path | str, run_dir: Path | str, *, force: bool = False,
               timeout_s: float = DEFAULT_TIMEOUT_S) -> bool:
    """Write one run folder into the store. Returns True when the store was written,
    False when the folder is unchanged since its last ingest (and not running)."""
    ws = resolve_ws(workspace)
    report = _ingest(ws, [Path(run_dir)], force=force, timeout_s=timeout_s, strict=True)
    return bool(report.ingested)


def ingest_all(workspace: Path | str, run_dirs: Iterable[Path | str] | None = None, *,
               force: bool = False, callbacks: Callbacks | None = None,
               timeout_s: float = DEFAULT_TIMEOUT_S) -> IngestReport:
    """Ingest every run folder under <ws>/runs (or the given ones) whose files changed
    since the last ingest, plus every run still recorded as running."""
    ws = resolve_ws(workspace)
    if run_dirs is None:
        root = runs_dir(ws)
        dirs = sorted(p for p in root.iterdir() if (p / "run.json").exists()) \
            if root.exists() else []
    else:
        dirs = [Path(d) for d in run_dirs]
    return _ingest(ws, dirs, force=force, timeout_s=timeout_s, strict=False,
                   callbacks=callbacks)


def _ingest(ws: Path, dirs: list[Path], *, force: bool, timeout_s: float, strict: bool,
            callbacks: Callbacks | None = None) -> IngestReport:
    report = IngestReport()
    emit(callbacks, "start", total=len(dirs), unit="runs", what="ingest")
    with store_lock(ws, timeout_s=timeout_s):
        con = open_rw(ws, timeout_s=timeout_s)
        try:
            known = dict(con.execute("SELECT run_dir, state_sig || '|' || status FROM runs")
                         .fetchall())
            for k, d in enumerate(dirs):
                d = d.resolve()
                prev = known.get(str(d))
                if not force and prev is not None \
                        and not prev.endswith(("|running", "|queued")) \
                        and prev.rsplit("|", 1)[0] == state_signature(d):
                    report.unchanged += 1
                    continue
                try:
                    rec = read_run_folder(d)
                    _write_checked(con, rec)
                    report.ingested.append(rec.run["run_id"])
                except StoreError as exc:
                    if strict:
                        raise
                    report.errors.append((str(d), exc.render()))
                    emit(callbacks, "log", message=f"skipped {d}: {exc.render()}")
                emit(callbacks, "progress", done=k + 1, total=len(dirs))
        finally:
            con.close()
    return report


def _write_checked(con, rec: RunRecord) -> None:
    """write_run with DuckDB's own errors (bad column types, ...) turned into a
    StoreError naming the run folder, so one bad folder cannot stop `ingest_all`."""
    import duckdb

    try:
        write_run(con, rec)
    except duckdb.Error as exc:
        raise StoreError(f"could not ingest this run folder: {str(exc).splitlines()[0]}",
                         path=rec.run_dir, hint="check predictions.parquet / metrics.json "
                         "against docs/dev-contracts.md, or rerun") from exc


def write_run(con, rec: RunRecord) -> None:
    """Replace every row of rec's run_id in one transaction."""
    run_id = rec.run["run_id"]
    preds = _predictions_select(rec) if rec.predictions_path else None
    with transaction(con):
        for table in PER_RUN_TABLES:
            con.execute(f"DELETE FROM {table} WHERE run_id = ?", [run_id])
        row = dict(rec.run, ingested=datetime.now(UTC).replace(tzinfo=None))
        con.execute(f"INSERT INTO runs ({', '.join(RUN_COLUMNS)}) VALUES "
                    f"({', '.join('?' * len(RUN_COLUMNS))})", [row[c] for c in RUN_COLUMNS])
        if rec.params:
            con.executemany("INSERT INTO run_params VALUES (?, ?, ?, ?, ?)",
                            [(run_id, *p) for p in rec.params])
        facts = run_facts(rec.metrics)
        if facts:
            _bulk(con, "run_facts", ["run_id", "key", "value_type", "num_value", "text_value"],
                  [(run_id, *f) for f in facts])
        if rec.history:
            _bulk(con, "metric_history", ["run_id", "step", "split", "name", "value", "t"],
                  [(run_id, *h) for h in rec.history])
        if rec.metrics:
            _write_metrics(con, run_id, rec)
            write_uncertainty(con, run_id, rec.metrics, _bulk)
        if preds is not None:
            con.execute(f"INSERT INTO predictions SELECT ? AS run_id, p.* FROM ({preds}) p",
                        [run_id])
        if rec.dataset:
            _upsert_dataset(con, rec.dataset)


def run_facts(metrics: dict | None) -> list[tuple]:
    """run_facts rows (key, value_type, num_value, text_value) from metrics.json `extra`:
    what the run measured about itself (train/predict seconds, n_train, the adapter's
    describe() facts under `model.`), flattened to dotted keys like run_params so the report
    never has to open the run folder. `subsets` is skipped (it is run_metrics already);
    lists are one 'json' row; a non-finite float keeps its text with num_value NULL."""
    extra = (metrics or {}).get("extra")
    if not isinstance(extra, dict):
        return []
    rows = typed_params({k: v for k, v in extra.items() if k != "subsets"})
    return [(k, t, n if t == "bool" else _num(n), x) for k, t, n, x in rows]


def _write_metrics(con, run_id: str, rec: RunRecord) -> None:
    m = rec.metrics or {}
    key = m.get("eval_key") or {}
    r = rec.run
    base = (run_id, key.get("dataset_fingerprint", r["dataset_fingerprint"]),
            key.get("split", r["test_split"]), _num(key.get("noise_level", r["noise_level"])),
            None if key.get("realisation") is None else str(key.get("realisation")))
    rows = _metric_rows(base, "all", m.get("overall") or {})
    for subset, vals in ((m.get("extra") or {}).get("subsets") or {}).items():
        rows += _metric_rows(base, subset, vals or {})
    if rows:
        _bulk(con, "run_metrics", ["run_id", "dataset_fingerprint", "split", "noise_level",
                                   "realisation", "subset", "metric", "value", "lo", "hi"], rows)
    bins = [(run_id, *[b.get(c) for c in BIN_COLUMNS]) for b in m.get("bins") or []]
    if bins:
        _bulk(con, "bin_metrics", ["run_id", *BIN_COLUMNS], bins)


def _metric_rows(base: tuple, subset: str, vals: dict) -> list[tuple]:
    """Long rows (…, metric, value, lo, hi); the *_lo/*_hi keys become lo/hi columns."""
    ci_names = {n for pair in CI_KEYS.values() for n in pair}
    rows = []
    for name, value in vals.items():
        if name in ci_names or _num(value) is None and value is not None:
            continue
        lo_key, hi_key = CI_KEYS.get(name, (None, None))
        rows.append((*base, subset, name, _num(value), _num(vals.get(lo_key)),
                     _num(vals.get(hi_key))))
    return rows


def _bulk(con, table: str, columns: list[str], rows: list[tuple]) -> None:
    """Insert many rows through one Arrow table (not row-by-row statements)."""
    import pyarrow as pa

    cols = list(zip(*rows))
    tbl = pa.table({c: pa.array(list(v)) for c, v in zip(columns, cols)})
    con.register("_logg_bulk", tbl)
    con.execute(f"INSERT INTO {table} ({', '.join(columns)}) SELECT {', '.join(columns)} "
                f"FROM _logg_bulk")
    con.unregister("_logg_bulk")


def _predictions_select(rec: RunRecord) -> str:
    """SELECT list reading predictions.parquet straight into DuckDB (parallel decode, no
    Python copy) with exactly PRED_COLUMNS; absent nullable columns become NULL. The schema
    is checked first so a torn or foreign file is a clear StoreError."""
    import pyarrow.parquet as pq

    path = rec.predictions_path
    try:
        names = set(pq.read_schema(path).names)
    except Exception as exc:  # pyarrow raises several types for a torn/foreign file
        raise StoreError(f"unreadable parquet: {exc}", path=path,
                         hint="rerun the run, or delete the file to ingest without "
                         "predictions") from exc
    for need in ("idx", "y_true", "y_pred"):
        if need not in names:
            raise StoreError(f"predictions.parquet has no '{need}' column", path=path,
                             key=need)
    cols = [f'CAST("{c}" AS {"BIGINT" if t == "int64" else "DOUBLE"}) AS "{c}"'
            if c in names else f'CAST(NULL AS DOUBLE) AS "{c}"' for c, t in PRED_COLUMNS.items()]
    lit = str(path).replace("'", "''")
    return f"SELECT {', '.join(cols)} FROM read_parquet('{lit}')"


def _upsert_dataset(con, d: dict) -> None:
    con.execute(
        "INSERT INTO datasets (fingerprint, name, path, n_train, n_val, n_test, splits, "
        "first_seen, generator_version, preset, seed) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, now(), ?, ?, ?) "
        "ON CONFLICT (fingerprint) DO UPDATE SET name = excluded.name, path = excluded.path, "
        "n_train = coalesce(excluded.n_train, datasets.n_train), "
        "n_val = coalesce(excluded.n_val, datasets.n_val), "
        "n_test = coalesce(excluded.n_test, datasets.n_test), "
        "splits = excluded.splits, "
        "generator_version = coalesce(excluded.generator_version, datasets.generator_version), "
        "preset = coalesce(excluded.preset, datasets.preset), "
        "seed = coalesce(excluded.seed, datasets.seed)",
        [d["fingerprint"], d.get("name"), d.get("path"), d.get("n_train"), d.get("n_val"),
         d.get("n_test"), d.get("splits") or json.dumps({}), d.get("generator_version"),
         d.get("preset"), d.get("seed")])


def _num(x) -> float | None:
    """A finite float, else None (bools and text are not metric values)."""
    if x is None or isinstance(x, (bool, str)):
        return None
    try:
        f = float(x)
    except (TypeError, ValueError):
        return None
    return f if f == f and abs(f) != float("inf") else None
