"""The one read API to the results store, used by the CLI, the report and logg-tui.

Why one object: the CLI, the report and the TUI used to open the store each in their own
way, and the copies disagreed (the TUI's SQL screen let `COPY … TO` write a file that
`logg-engine query` refused). A `StoreReader` opens one short-lived read-only connection
(`connect_ro`: identity and schema checks, lock retries, and DuckDB's own lock-down —
no files, no extensions, settings frozen), executes, and maps DuckDB's errors to the
engine's (StoreError; SpecError for a bad or refused user statement). User SQL also has
to pass `check_user_sql`: only SELECT-like statements (SELECT, FROM, WITH, VALUES,
DESCRIBE, SHOW, SUMMARIZE, EXPLAIN) run, whatever the connection would allow.

The reads several surfaces share live here once: the scaling curve (`scaling_curve`),
run parameters (`run_params`, decoded by `param_value`) and run details (`run_detail`).

    with StoreReader(ws) as r:
        df = r.df("SELECT * FROM leaderboard")
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine.errors import SpecError, StoreError
from engine.jsonsafe import plain
from engine.paths import store_path
from engine.paths import workspace as resolve_ws
from engine.store.connect import DEFAULT_TIMEOUT_S, NO_RESULTS_HINT, connect_ro

if TYPE_CHECKING:  # pandas is imported lazily: the TUI's first screen does not need it
    import pandas as pd

USER_ROW_LIMIT = 2000
# Statement types user SQL may run (duckdb.StatementType names); DESCRIBE, SHOW, SUMMARIZE,
# FROM-first and VALUES parse as SELECT.
USER_STATEMENTS = ("SELECT", "EXPLAIN")
REFUSED_BECAUSE = {  # statement type → why it is refused (anything else: a write)
    "COPY": "SQL here cannot read or write files",
    "EXPORT": "SQL here cannot read or write files",
    "ATTACH": "SQL here cannot attach databases",
    "DETACH": "SQL here cannot attach databases",
    "LOAD": "SQL here cannot install or load extensions",
    "SET": "SQL here cannot change settings",
    "VARIABLE_SET": "SQL here cannot change settings",
    "PRAGMA": "SQL here cannot change settings (PRAGMA); read them with duckdb_settings()",
}
READ_ONLY_HINT = ("only SELECT-like statements run here (SELECT, FROM, WITH, DESCRIBE, "
                  "SHOW, SUMMARIZE, EXPLAIN); save a result with `logg-engine query --csv "
                  "SQL > file.csv`; only `logg-engine ingest` writes the store")

_SCALING_SQL = """
SELECT r.model, r.dataset_name AS dataset, r.noise_level, r.train_size, r.preset, r.seed,
       r.test_split, o.r2, o.r2_lo, o.r2_hi, o.mae, o.mae_lo, o.mae_hi, o.rmse, o.bias, o.n,
       r.duration_s, r.run_id, r.config_hash, r.ended, r.dataset_fingerprint,
       count(*) OVER p AS n_runs
FROM runs r JOIN run_overall o ON o.run_id = r.run_id AND o.subset = 'all'
WHERE r.status = 'finished' {where}
WINDOW p AS (PARTITION BY r.model, r.dataset_name, r.dataset_fingerprint, r.noise_level,
             r.train_size)
QUALIFY row_number() OVER (p ORDER BY r.ended DESC NULLS LAST, r.run_id DESC) = 1
ORDER BY model, dataset, noise_level, train_size"""


@dataclass
class RunDetail:
    """One run as every surface shows it: the `runs` row (spec parsed), its decoded
    parameters, metrics with CIs and eval keys, every bin row, the metric history and
    (when asked for) a sample of predictions."""

    run_id: str
    run: dict[str, Any]
    params: pd.DataFrame    # key, value_type, num_value, text_value, value (decoded)
    overall: pd.DataFrame   # run_metrics: subset, metric, value, lo, hi + eval key
    bins: pd.DataFrame      # bin_metrics, every scheme
    history: pd.DataFrame   # metric_history: step, split, name, value
    sample: pd.DataFrame    # y_true, y_pred, snr (empty unless sample_rows > 0)
    spec: dict[str, Any] = field(default_factory=dict)


class StoreReader:
    """A read-only session on the store: open it as a context manager, read, close it
    quickly (an open reader blocks writers)."""

    def __init__(self, workspace: Path | str | None = None, *,
                 timeout_s: float = DEFAULT_TIMEOUT_S, live: bool = False) -> None:
        self.workspace = resolve_ws(workspace)
        self.path = store_path(self.workspace)
        self.timeout_s = timeout_s
        self.live = live
        self.con: Any = None
        self._cm: Any = None
        self._live_rows: list[dict[str, Any]] = []

    def __enter__(self) -> StoreReader:
        """`live`: also gather the runs in flight (engine.store.live) for `runs_now`; with
        no store file yet but runs in flight, an empty in-memory store stands in, so a
        first run whose launcher was killed is still listed."""
        if self.live:
            from engine.store.live import empty_store, live_rows

            self._live_rows = live_rows(self.workspace)
            if not self.path.exists() and self._live_rows:
                self.con = empty_store()
                return self
        if not self.path.exists():
            raise StoreError("no results yet", path=self.path, hint=NO_RESULTS_HINT)
        self._cm = connect_ro(self.workspace, timeout_s=self.timeout_s)
        self.con = self._cm.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        cm, self._cm, con, self.con = self._cm, None, self.con, None
        if cm is not None:
            cm.__exit__(*exc)
        elif con is not None:
            con.close()

    def runs_now(self, sql: str, params: list | None = None) -> tuple[str, list]:
        """`sql` over `runs_now` (the store's runs plus the runs in flight, a reader opened
        with live=True) → (the SQL with its WITH prefix, the parameters)."""
        from engine.store.live import runs_now_sql

        prefix, live = runs_now_sql(self._live_rows)
        return prefix + sql, live + list(params or [])

    # ------------------------------------------------------------ executing

    def execute(self, sql: str, params: list | None = None, *, user: bool = False) -> Any:
        """DuckDB's result of one call; DuckDB errors become engine errors (SpecError for
        user SQL, StoreError for the engine's own queries)."""
        import duckdb

        try:
            return self.con.execute(sql, params or [])
        except duckdb.Error as exc:
            raise _engine_error(exc, user=user, path=self.path) from None

    def df(self, sql: str, params: list | None = None) -> pd.DataFrame:
        return self.execute(sql, params).df()

    def rows(self, sql: str, params: list | None = None, *,
             user: bool = False) -> tuple[list[str], list[tuple]]:
        """(column names, rows as tuples): no pandas, for the TUI's start-up path. `user`:
        the SQL holds a user's fragment (checked by `check_user_sql` first)."""
        if user:
            check_user_sql(self.con, sql)
        res = self.execute(sql, params, user=user)
        return [c[0] for c in res.description], res.fetchall()

    def scalar(self, sql: str, params: list | None = None) -> Any:
        row = self.execute(sql, params).fetchone()
        return None if row is None else row[0]

    def has(self, *names: str) -> bool:
        """True when the store has every named table or view (older stores lack the
        analysis views of migration 002 and run_facts of 003; readers never migrate)."""
        have = {r[0] for r in self.execute(
            "SELECT table_name FROM information_schema.tables").fetchall()}
        return set(names) <= have

    def user_sql(self, sql: str, limit: int = USER_ROW_LIMIT) -> tuple[pd.DataFrame, bool]:
        """A user's statement(s) after `check_user_sql`; at most `limit` rows, and whether
        more were cut off. With several statements, the last one's result."""
        import pandas as pd

        check_user_sql(self.con, sql)
        res = self.execute(sql.strip().rstrip(";"), user=True)
        if not res.description:
            return pd.DataFrame(), False
        cols = [c[0] for c in res.description]
        rows = res.fetchmany(limit + 1)
        return pd.DataFrame(rows[:limit], columns=cols), len(rows) > limit

    # ------------------------------------------------------------ shared reads

    def scaling_curve(self, *, dataset: str | None = None, fingerprint: str | None = None,
                      run_ids: list[str] | None = None) -> pd.DataFrame:
        """The scaling curve: per (model, dataset, noise level, train size) the latest
        finished run (as the `scaling_curve` view), with its R²/MAE CIs and `n_runs`, the
        finished runs at that point. `run_ids` restricts the candidates (a grid's runs);
        `fingerprint` one build of the dataset (builds by other generator versions are
        separate points, never mixed)."""
        where, params = "", list[Any]()
        if dataset is not None:
            where += " AND r.dataset_name = ?"
            params.append(dataset)
        if fingerprint is not None:
            where += " AND r.dataset_fingerprint = ?"
            params.append(fingerprint)
        if run_ids is not None:
            where += " AND list_contains(?, r.run_id)"
            params.append(list(run_ids))
        return self.df(_SCALING_SQL.format(where=where), params)

    def ceiling_snr(self, *, dataset: str | None = None,
                    fingerprint: str | None = None) -> pd.DataFrame:
        """Per SNR bin of the newest `logg-engine ceiling` analysis (dataset rows): snr_mid,
        r2_max_bin, r2_max_bayes, analysis_id. `fingerprint`: only that build's analyses;
        else `dataset`'s name first, any dataset's after it. Empty without one."""
        import pandas as pd

        cols = ["snr_mid", "r2_max_bin", "r2_max_bayes", "analysis_id"]
        if not self.has("ceiling"):
            return pd.DataFrame(columns=cols)
        where, params = "", list[Any]()
        if fingerprint is not None:
            where, params = "AND json_extract_string(a.params, '$.dataset_fingerprint') = ?", \
                [fingerprint]
        return self.df(f"""
            WITH latest AS (
                SELECT c.analysis_id FROM ceiling c JOIN analyses a USING (analysis_id)
                WHERE c.section = 'dataset' AND c.scheme = 'snr' {where}
                ORDER BY (c.dataset = ?) DESC, a.created DESC NULLS LAST LIMIT 1)
            SELECT (lo + hi) / 2 AS snr_mid, r2_max_bin, r2_max_bayes, analysis_id
            FROM ceiling WHERE analysis_id = (SELECT analysis_id FROM latest)
              AND section = 'dataset' AND scheme = 'snr' ORDER BY snr_mid""",
            [*params, dataset])

    def run_params(self, run_ids: list[str]) -> pd.DataFrame:
        """run_params rows of the runs with a decoded `value` column (`param_value`)."""
        df = self.df("SELECT run_id, key, value_type, num_value, text_value FROM run_params "
                     "WHERE list_contains(?, run_id) ORDER BY run_id, key", [list(run_ids)])
        df["value"] = [param_value(t, n, s) for t, n, s in
                       zip(df["value_type"], df["num_value"], df["text_value"])]
        return df

    def resolve_run_id(self, ref: str) -> str:
        """Exact run id, else a unique prefix (a run folder path works too); SpecError
        naming the candidates otherwise."""
        ref = Path(ref).name if "/" in ref else ref
        hits = [r[0] for r in self.execute(
            "SELECT run_id FROM runs WHERE run_id = ? OR starts_with(run_id, ?) "
            "ORDER BY run_id", [ref, ref]).fetchall()]
        if ref in hits:
            return ref
        if len(hits) == 1:
            return hits[0]
        if not hits:
            raise SpecError(f"no run '{ref}' in the store", key="RUN",
                            hint="`logg-engine runs ls` lists runs; `logg-engine ingest` "
                            "adds new run folders")
        raise SpecError(f"'{ref}' matches {len(hits)} runs: {', '.join(hits[:5])}",
                        key="RUN", hint="give more of the run id")

    def run_detail(self, ref: str, *, sample_rows: int = 0) -> RunDetail:
        """Everything `runs show` and the TUI's Run detail show, in one connection."""
        import pandas as pd

        run_id = self.resolve_run_id(ref)
        # the data's generator version beside the run (datasets built by different
        # generator versions never share a fingerprint; NULL for pfsspec data)
        run = self.df("SELECT r.*, d.generator_version FROM runs r LEFT JOIN datasets d "
                      "ON d.fingerprint = r.dataset_fingerprint WHERE r.run_id = ?",
                      [run_id]).iloc[0]
        row = {k: plain(v) for k, v in run.items()}
        try:
            spec = json.loads(row.get("spec") or "{}")
        except (TypeError, ValueError):
            spec = {}
        sample = pd.DataFrame(columns=["y_true", "y_pred", "snr"])
        if sample_rows > 0:
            sample = self.df("SELECT y_true, y_pred, snr FROM predictions WHERE run_id = ? "
                             f"USING SAMPLE reservoir({int(sample_rows)} ROWS) REPEATABLE (0)",
                             [run_id])
        return RunDetail(
            run_id=run_id, run=row, spec=spec if isinstance(spec, dict) else {},
            params=self.run_params([run_id]).drop(columns="run_id"),
            overall=self.df("SELECT subset, metric, value, lo, hi, dataset_fingerprint, "
                            "split, noise_level, realisation FROM run_metrics "
                            "WHERE run_id = ? ORDER BY subset, metric", [run_id]),
            bins=self.df("SELECT scheme, bin, label, n, r2, r2_lo, r2_hi, mae, rmse, bias, "
                         "r2_max, eta FROM bin_metrics WHERE run_id = ? "
                         "ORDER BY scheme, bin", [run_id]),
            history=self.df("SELECT step, split, name, value FROM metric_history "
                            "WHERE run_id = ? ORDER BY name, step", [run_id]),
            sample=sample)


# ---------------------------------------------------------------- module-level helpers

def store_exists(workspace: Path | str | None) -> bool:
    return store_path(resolve_ws(workspace)).exists()


def query_df(workspace: Path | str | None, sql: str, params: list | None = None, *,
             timeout_s: float = DEFAULT_TIMEOUT_S) -> pd.DataFrame:
    """One engine query in its own short-lived reader."""
    with StoreReader(workspace, timeout_s=timeout_s) as r:
        return r.df(sql, params)


def user_query(workspace: Path | str | None, sql: str, limit: int = USER_ROW_LIMIT, *,
               timeout_s: float = DEFAULT_TIMEOUT_S) -> tuple[pd.DataFrame, bool]:
    """User SQL (`logg-engine query`, the TUI's SQL screen): `StoreReader.user_sql`."""
    with StoreReader(workspace, timeout_s=timeout_s) as r:
        return r.user_sql(sql, limit)


def find_finished_run(workspace: Path | str | None, *, model: str, config_hash: str,
                      dataset_fingerprint: str, train_size: int | None, noise_level: float,
                      seed: int, test_split: str) -> str | None:
    """run_id of the latest finished run with exactly this key, else None (also None when
    there is no store yet). Lets the runner skip work that is already done."""
    if not store_exists(workspace):
        return None
    row = query_df(workspace, """
        SELECT run_id FROM runs
        WHERE status = 'finished' AND model = ? AND config_hash = ?
          AND dataset_fingerprint = ? AND train_size IS NOT DISTINCT FROM ?
          AND abs(noise_level - ?) < 1e-12 AND seed = ? AND test_split = ?
        ORDER BY ended DESC NULLS LAST, run_id DESC LIMIT 1""",
                   [model, config_hash, dataset_fingerprint, train_size, float(noise_level),
                    int(seed), test_split])
    return None if row.empty else str(row.iloc[0, 0])


def has_analysis(workspace: Path | str | None, analysis_id: str) -> bool:
    """Whether the store holds this analysis (False when there is no store yet): lets an
    analysis command skip work that is already done (`--if-missing`)."""
    if not store_exists(workspace):
        return False
    return not query_df(workspace, "SELECT 1 FROM analyses WHERE analysis_id = ?",
                        [analysis_id]).empty


def check_user_sql(con: Any, sql: str) -> None:
    """SpecError unless every statement in `sql` is SELECT-like. The connection's own
    lock-down (READ_ONLY_CONFIG) would refuse most of the rest too; this check makes the
    refusal one clear message, and also covers what a read-only connection allows
    (ATTACH ':memory:', CREATE TEMP TABLE, SET of unlocked options, CALL, PRAGMA)."""
    import duckdb

    if not sql.strip():
        raise SpecError("empty SQL", key="SQL", hint="e.g. SELECT * FROM leaderboard")
    try:
        statements = con.extract_statements(sql)
    except duckdb.Error as exc:
        raise SpecError(f"SQL error: {_first_line(exc)}", key="SQL",
                        hint="see docs/sql.md for the tables and views") from None
    for st in statements:
        kind = str(st.type).rsplit(".", 1)[-1]
        if kind not in USER_STATEMENTS:
            why = REFUSED_BECAUSE.get(kind, "the store is read-only here")
            raise SpecError(f"refused {kind} statement: {why}; only SELECT-like statements "
                            "run", key="SQL", hint=READ_ONLY_HINT)


def param_value(value_type: str, num_value: Any, text_value: Any) -> Any:
    """A run_params (or run_facts) row's typed value back as Python: the one decoder
    (rows are written by engine.store.runfolder.typed_params)."""
    num = None if num_value is None or num_value != num_value else num_value
    if value_type == "bool":
        return text_value == "true" if text_value is not None else bool(num)
    if value_type in ("int", "float") and num is not None:
        return int(num) if value_type == "int" else float(num)
    if value_type == "json" and text_value is not None:
        try:
            return json.loads(text_value)
        except ValueError:
            return text_value
    if value_type == "float" and text_value is not None:  # non-finite: its text
        try:
            return float(text_value)
        except ValueError:
            return text_value
    return None if value_type == "null" else text_value


def _engine_error(exc: BaseException, *, user: bool, path: Path) -> Exception:
    """A DuckDB error as the engine's: what was refused and the fix."""
    text = str(exc)
    low = text.lower()
    if "file system operations are disabled" in low or "external access" in low \
            or "loading external extensions is disabled" in low:
        return SpecError("refused: SQL here cannot read or write files, attach databases "
                         "or load extensions", key="SQL", hint=READ_ONLY_HINT)
    if "read-only" in low or "read only" in low or "configuration has been locked" in low:
        return SpecError("refused: the store is read-only here (no INSERT, UPDATE, DELETE, "
                         "CREATE, DROP, SET ...)", key="SQL", hint=READ_ONLY_HINT)
    if user:
        return SpecError(f"SQL error: {_first_line(exc)}", key="SQL",
                         hint="see docs/sql.md for the tables and views")
    return StoreError(f"query failed: {_first_line(exc)}", path=path,
                      hint="a store from an older logg may lack a table or view: "
                      "`logg-engine ingest` migrates it")


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__
