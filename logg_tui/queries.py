"""Every store query and file tail the TUI makes, as plain functions returning DataFrames
or dicts. The TUI reads the store only through the engine's one read API,
`engine.store.reader.StoreReader` (the CLI and the report use it too): no module of
logg_tui opens DuckDB itself, and user SQL gets the same lock-down as `logg-engine query`.

Why plain functions: screens call them from `@work(thread=True)` workers, tests call them
directly, and the benchmark times them. Each opens one short reader (which blocks writers
while open) with a short lock timeout, so a held store surfaces as `StoreBusy` (a status
line), never a frozen UI."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine.errors import StoreError
from engine.jsonsafe import plain
from engine.paths import runs_dir, store_path
from engine.store.reader import RunDetail, StoreReader

if TYPE_CHECKING:  # pandas is imported lazily: the first screen does not need it
    import pandas as pd

LOCK_TIMEOUT_S = 2.0
RUNS_LIMIT = 100   # first page; sort and filter run in SQL over every run, `+` loads more
RUN_COLUMNS = ["run_id", "status", "model", "preset", "size", "noise", "r2", "mae",
               "duration_s", "started", "dataset"]
SORTABLE = set(RUN_COLUMNS)
VIEWS = {
    "leaderboard": "finished runs ranked by R² within (dataset, test split, noise level)",
    "scaling_curve": "latest finished run per (model, dataset, noise, train size)",
    "r2_vs_snr": "per-SNR-bin R², its CI and the CRLB ceiling r2_max per run",
    "bin_table": "every bin_metrics row with the run's model/dataset/size/noise",
    "run_overall": "one row per (run, subset) with r2, CIs, mae, rmse, bias, ...",
    "moe_bins": "MoE oracle per bin (expert vs global R²) of each `moe oracle` analysis",
    "moe_overall": "MoE oracle overall (covered / all) with paired CIs",
    "moe_gates": "learned-gate MoE per bin and overall (R², ρ, accuracy, fallback rate)",
    "deleakage": "error-vector feature strategies: log g R² vs SNR R², passed",
    "ceiling": "Fisher/CRLB ceiling per SNR / magnitude bin, runs beside it",
}

_RUNS_SQL = """
SELECT r.run_id, r.status, r.model, r.preset, r.train_size AS size, r.noise_level AS noise,
       o.r2, o.mae, r.duration_s, r.started, r.dataset_name AS dataset
FROM runs_now r LEFT JOIN run_overall o ON o.run_id = r.run_id AND o.subset = 'all'
"""  # runs_now: the store's runs plus the runs in flight (engine.store.live)


class StoreBusy(Exception):
    """Another process holds the store (or there is none yet): show it, do not crash."""


@dataclass
class RunsPage:
    """One page of the Runs table (plain tuples: no pandas on the start-up path) plus
    the total matching count."""

    columns: list[str]
    rows: list[tuple]
    total: int

    def column(self, name: str) -> list[Any]:
        j = self.columns.index(name)
        return [r[j] for r in self.rows]


@contextmanager
def _reader(ws: Path, *, live: bool = False) -> Iterator[StoreReader]:
    """The TUI's reader: a short lock timeout; a missing or held store is StoreBusy (a
    refused or bad user statement stays the engine's SpecError). `live`: runs in flight
    too (`runs_now`), listed even before the store exists."""
    try:
        with StoreReader(ws, timeout_s=LOCK_TIMEOUT_S, live=live) as r:
            yield r
    except StoreError as exc:
        if not store_path(ws).exists():
            raise StoreBusy(f"no results store yet at {store_path(ws)}; "
                            "run `logg-engine run ridge --size 10k`") from exc
        raise StoreBusy(exc.message) from exc


def query(ws: Path, sql: str, params: list | None = None) -> pd.DataFrame:
    """One engine query; StoreBusy when the store is missing or held too long."""
    with _reader(ws) as r:
        return r.df(sql, params)


def user_query(ws: Path, sql: str, limit: int = 2000) -> tuple[pd.DataFrame, bool]:
    """A user's SQL, locked down exactly as `logg-engine query` (StoreReader.user_sql:
    SELECT-like statements only, no files/ATTACH/INSTALL/SET); at most `limit` rows come
    back, and whether more were cut off. A refusal is the engine's SpecError."""
    with _reader(ws) as r:
        return r.user_sql(sql, limit)


def runs_page(ws: Path, *, text: str = "", where: str = "", sort: str = "started",
              descending: bool = True, limit: int = RUNS_LIMIT) -> RunsPage:
    """The Runs table: quick text filter (run id, model, status, preset, dataset) and/or a
    SQL WHERE fragment over the displayed column names."""
    if sort not in SORTABLE:
        sort = "started"
    conds, params = [], []
    if text:
        conds.append("concat_ws(' ', run_id, model, status, preset, dataset) ILIKE ?")
        params.append(f"%{text}%")
    if where.strip():
        conds.append(f"({where})")
    cond = f"WHERE {' AND '.join(conds)}" if conds else ""
    order = f"ORDER BY {sort} {'DESC' if descending else 'ASC'} NULLS LAST, run_id"
    sql = (f"SELECT *, count(*) OVER () AS _total FROM ({_RUNS_SQL}) {cond} {order} "
           f"LIMIT {int(limit)}")
    with _reader(ws, live=True) as r:  # the WHERE fragment is the user's: checked as user SQL
        cols, rows = r.rows(*r.runs_now(sql, params), user=bool(where.strip()))
    total = int(rows[0][-1]) if rows else 0
    return RunsPage(cols[:-1], [r[:-1] for r in rows], total)


def run_detail(ws: Path, run_id: str, sample_rows: int = 2000) -> RunDetail:
    """Everything the Run detail screen shows, in one reader: the engine's
    `StoreReader.run_detail`, the same read as `logg-engine runs show`."""
    with _reader(ws) as r:
        return r.run_detail(run_id, sample_rows=sample_rows)


def compare(ws: Path, run_ids: list[str], scheme: str = "snr") -> dict[str, pd.DataFrame]:
    """Config keys that differ, metric deltas vs the first run, per-bin ΔR² vs the first."""
    ids = list(dict.fromkeys(run_ids))
    with _reader(ws) as r:
        runs = r.df("SELECT run_id, model, preset, dataset_name AS dataset, train_size, "
                    "noise_level, seed, test_split FROM runs WHERE list_contains(?, run_id)",
                    [ids])
        params = r.run_params(ids)
        overall = r.df("SELECT run_id, r2, r2_lo, r2_hi, mae, rmse, bias, n FROM run_overall "
                       "WHERE subset = 'all' AND list_contains(?, run_id)", [ids])
        bins = r.df("SELECT run_id, bin, label, r2 FROM bin_metrics WHERE scheme = ? AND "
                    "list_contains(?, run_id)", [scheme, ids])
    return {"config": _config_diff(runs, params, ids), "metrics": _metric_deltas(overall, ids),
            "bins": _bin_deltas(bins, ids)}


def _config_diff(runs: pd.DataFrame, params: pd.DataFrame, ids: list[str]) -> pd.DataFrame:
    import pandas as pd

    cfg: dict[str, dict[str, Any]] = {i: {} for i in ids}
    for _, r in runs.iterrows():
        cfg[r["run_id"]].update({k: plain(r[k]) for k in runs.columns if k != "run_id"})
    for _, p in params.iterrows():
        cfg[p["run_id"]][f"param.{p['key']}"] = p["value"]
    keys = sorted({k for c in cfg.values() for k in c})
    rows = []
    for k in keys:
        vals = [cfg[i].get(k) for i in ids]
        if len({json.dumps(v, default=str) for v in vals}) > 1:
            rows.append({"key": k, **{i: _fmt(v) for i, v in zip(ids, vals)}})
    return pd.DataFrame(rows, columns=["key", *ids])


def _metric_deltas(overall: pd.DataFrame, ids: list[str]) -> pd.DataFrame:
    import pandas as pd

    o = overall.set_index("run_id").reindex(ids)
    rows = []
    for metric in ("r2", "mae", "rmse", "bias"):
        base = o[metric].iloc[0]
        row: dict[str, Any] = {"metric": metric}
        for i in ids:
            v = o.at[i, metric]
            row[i] = v
            row[f"Δ {i}"] = None if i == ids[0] or pd.isna(v) or pd.isna(base) else v - base
        rows.append(row)
    return pd.DataFrame(rows)


def _bin_deltas(bins: pd.DataFrame, ids: list[str]) -> pd.DataFrame:
    import pandas as pd

    if bins.empty:
        return pd.DataFrame(columns=["bin", "label"])
    wide = bins.pivot_table(index=["bin", "label"], columns="run_id", values="r2",
                            aggfunc="first").reindex(columns=ids)
    out = wide.reset_index()
    for i in ids[1:]:
        out[f"ΔR² {i}"] = wide[i].to_numpy() - wide[ids[0]].to_numpy()
    return out


def scaling(ws: Path) -> pd.DataFrame:
    """The scaling curve (model, dataset, noise_level, train_size, r2, mae, ...):
    `StoreReader.scaling_curve`, the same read as the report's scaling section."""
    with _reader(ws) as r:
        return r.scaling_curve()


def default_snr_runs(ws: Path, k: int = 4) -> list[str]:
    """Without a selection, R² vs SNR shows the best finished run of each model."""
    df = query(ws, "SELECT model, arg_max(run_id, r2) AS run_id FROM leaderboard "
                   "GROUP BY model ORDER BY max(r2) DESC NULLS LAST LIMIT ?", [k])
    return df["run_id"].tolist()


def r2_vs_snr(ws: Path, run_ids: list[str]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(per-bin rows of the r2_vs_snr view for the runs, the ceiling band per SNR bin
    from the latest `logg-engine ceiling` analysis of their dataset: columns x (bin
    midpoint), lo, hi, analysis_id — empty when there is none)."""
    import pandas as pd

    if not run_ids:
        return pd.DataFrame(), pd.DataFrame()
    marks = ", ".join("?" * len(run_ids))
    rows = query(ws, f"SELECT * FROM r2_vs_snr WHERE run_id IN ({marks}) ORDER BY run_id, bin",
                 list(run_ids))
    if rows.empty:
        return rows, pd.DataFrame()
    with _reader(ws) as r:
        c = r.ceiling_snr(dataset=str(rows["dataset"].iloc[0])).dropna(subset=["r2_max_bin"])
    bayes = c["r2_max_bayes"].fillna(c["r2_max_bin"])
    ceiling = pd.DataFrame({"x": c["snr_mid"], "lo": c["r2_max_bin"].combine(bayes, min),
                            "hi": c["r2_max_bin"].combine(bayes, max),
                            "analysis_id": c["analysis_id"]}).reset_index(drop=True)
    return rows, ceiling


def moe_tables(ws: Path) -> dict[str, pd.DataFrame]:
    """The latest MoE oracle (per bin), gate (R² per bin, one column per gate/routing,
    as the research's table) and de-leakage analyses, from the analysis views. Empty frames
    when absent."""
    import pandas as pd

    out = {"oracle": pd.DataFrame(), "moe_gate": pd.DataFrame(), "deleakage": pd.DataFrame()}
    if _has_views(ws, "moe_bins", "moe_gates", "deleakage"):
        out["oracle"] = query(ws, """
            SELECT label, n_test, r2_oracle, r2_global, delta_r2, mae_oracle, mae_global,
                   n_train, bin, bins, expert_kind AS expert, train_size AS size
            FROM moe_bins WHERE analysis_id = (
                SELECT analysis_id FROM analyses WHERE kind = 'moe_oracle'
                ORDER BY created DESC NULLS LAST LIMIT 1) ORDER BY bin""")
        gates = query(ws, """
            SELECT g.bins, g.gate || '/' || g.routing AS gate, g.bin, g.label, g.n, g.r2_gate
            FROM moe_gates g JOIN analyses a USING (analysis_id)
            WHERE g.section = 'bin' AND g.bins = (
                SELECT params->>'bins' FROM analyses WHERE kind = 'moe_gate'
                ORDER BY created DESC NULLS LAST LIMIT 1)
            QUALIFY row_number() OVER (PARTITION BY g.gate, g.routing, g.bin
                                       ORDER BY a.created DESC NULLS LAST) = 1
            ORDER BY g.bin""")
        if not gates.empty:
            wide = gates.pivot_table(index=["bin", "label"], columns="gate", values="r2_gate",
                                     aggfunc="first").reset_index()
            wide.columns.name = None
            out["moe_gate"] = wide.rename(columns={c: f"R² {c}" for c in wide.columns
                                                   if c not in ("bin", "label")})
        out["deleakage"] = query(ws, """
            SELECT strategy, n_features, logg_r2_test AS logg_r2, snr_r2_test AS snr_r2,
                   passed
            FROM deleakage WHERE analysis_id = (
                SELECT analysis_id FROM analyses WHERE kind = 'deleakage'
                ORDER BY created DESC NULLS LAST LIMIT 1) ORDER BY strategy""")
    return out


def _has_views(ws: Path, *names: str) -> bool:
    """True when the store has every named view (the analysis views arrive with
    migration 002; an older store may lack them)."""
    with _reader(ws) as r:
        return r.has(*names)


def store_objects(ws: Path) -> pd.DataFrame:
    """Tables and views of the store (for the SQL screen's side list)."""
    return query(ws, "SELECT table_name AS name, lower(table_type) AS type FROM "
                     "information_schema.tables WHERE table_schema = 'main' "
                     "ORDER BY table_type DESC, table_name")


# ------------------------------------------------------------------ run folders (no store)

def run_folder(ws: Path, run_id: str) -> Path:
    return runs_dir(ws) / run_id






def _fmt(v: Any) -> str:
    return "—" if v is None else (f"{v:.6g}" if isinstance(v, float) else str(v))
