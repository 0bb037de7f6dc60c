"""The markdown results summary (`logg-engine report`), built from the store only.

Why: the research's reports carried hand-copied and stale numbers (ORIGINAL_SYSTEM.md §9.2
items 1, 5). This report has the research summary's sections (scaling curve, MoE oracle
and gates, de-leakage, model configurations, result files, summary table) and every number
in it is read from the results store at generation time. The single exception is the
"comparison with the research" table, whose reference column comes from
engine.report.research_reference and is labelled as the research's. A section whose data
is not in the store yet says which command fills it.

This module loads what the report needs (one short read-only connection) into a
`ReportData`; the sections live in scaling_tables, moe_tables, sections and
compare."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pandas as pd

from engine.errors import StoreError
from engine.paths import store_path
from engine.store.connect import NO_RESULTS_HINT, connect_ro

ANALYSIS_VIEWS = ("moe_bins", "moe_overall", "moe_gates", "deleakage", "ceiling")
KIND_VIEW = {"moe_oracle": "moe_bins", "moe_gate": "moe_gates", "deleakage": "deleakage",
             "ceiling": "ceiling"}  # analysis kind → the view its section reads
KNOWN_KINDS = tuple(KIND_VIEW)


@dataclass
class ReportData:
    """Everything one report reads, already restricted to one dataset."""

    workspace: Path
    dataset: str
    points: pd.DataFrame        # best finished run per model × train size × noise level
    noise: float | None         # the noise level most runs used (sections 1.2, 4, summary)
    info: pd.DataFrame          # test split / fingerprint of those runs
    bins: pd.DataFrame          # bin_table rows of those runs
    params: pd.DataFrame        # run_params of those runs
    runs: pd.DataFrame          # runs rows of those runs (command, device, run_dir, ...)
    moe_experts: pd.DataFrame   # per-expert rows of MoE runs (moe_experts table)
    analyses: pd.DataFrame      # this dataset's analyses that have rows (params parsed)
    views: dict[str, pd.DataFrame] = field(default_factory=dict)  # ANALYSIS_VIEWS rows
    confusion: pd.DataFrame = field(default_factory=pd.DataFrame)  # gate confusion rows
    other: dict[str, pd.DataFrame] = field(default_factory=dict)   # analyses of other kinds
    n_train: float | None = None  # training rows of the dataset (datasets table), if known
    facts: dict[str, dict[str, float]] = field(default_factory=dict)  # run_facts (numeric)
    uq: dict[str, pd.DataFrame] = field(default_factory=dict)  # calibration views' rows
    variants: dict[str, pd.DataFrame] = field(default_factory=dict)  # every ViT run's facts

    def pick(self, kind: str, **match: Any) -> str | None:
        """The analysis of `kind` whose params match `match`, preferring the report's noise
        level, then the newest; None when there is none."""
        if KIND_VIEW.get(kind, kind) not in self.views:  # an old store without the views
            return None
        a = self.analyses[self.analyses["kind"] == kind]
        for k, v in match.items():
            if a.empty:
                return None
            a = a[a["params"].map(lambda p, k=k, v=v: p.get(k) == v).astype(bool)]
        if a.empty:
            return None
        same_noise = a["params"].map(lambda p: _same(p.get("noise_level", 1.0), self.noise))
        a = a.assign(_n=same_noise).sort_values(["_n", "created", "analysis_id"])
        return str(a.iloc[-1]["analysis_id"])

    def view(self, name: str, analysis_id: str | None) -> pd.DataFrame:
        df = self.views.get(name, pd.DataFrame())
        if analysis_id is None or df.empty:
            return df.iloc[0:0]
        return df[df["analysis_id"] == analysis_id]

    def params_of(self, analysis_id: str | None) -> dict[str, Any]:
        if analysis_id is None:
            return {}
        row = self.analyses[self.analyses["analysis_id"] == analysis_id]
        return row.iloc[0]["params"] if len(row) else {}


def build_report(workspace: Path, dataset: str | None = None, *, compare: bool = True) -> str:
    """Markdown summary for one dataset (default: the one with the most finished runs).
    `compare`: add the table of our numbers beside the research's reference values."""
    from engine.report import compare as C
    from engine.report import moe_tables as M
    from engine.report import scaling_tables as S
    from engine.report import sections as X
    from engine.report.uncertainty_tables import uncertainty_section
    from engine.report.vit_variants import vit_variants_section

    d = load_report_data(workspace, dataset)
    now = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    splits = ", ".join(map(str, d.info["test_split"].dropna().unique())) or "—"
    fps = ", ".join(map(str, d.info["dataset_fingerprint"].dropna().unique())) or "—"
    out = [f"# log g results summary — dataset `{d.dataset}`", "",
           f"> Generated {now} from the results store `{store_path(d.workspace)}`: every "
           "number below is read from it"
           + (", except the research's reference values in the comparison table (labelled)."
              if compare else "."), ">",
           f"> Test split(s): {splits}; dataset fingerprint(s): {fps}; "
           f"runs: {len(d.points)} (model × size × noise points); "
           f"analyses: {len(d.analyses)}.", "", "---", ""]
    for part in (S.scaling_section, M.moe_section, X.deleakage_section, X.ceiling_section,
                 uncertainty_section, vit_variants_section, X.configurations_section,
                 X.files_section):
        out += part(d) + ["---", ""]
    out += C.summary_section(d, compare) + ["---", ""]
    if compare:
        out += C.comparison_section(d) + ["---", ""]
    out += C.next_steps_section(d)
    out += X.other_analyses_section(d)
    return "\n".join(out).rstrip() + "\n"


def load_report_data(workspace: Path, dataset: str | None = None) -> ReportData:
    """Read the store once (read-only) and keep the rows of `dataset`."""
    with connect_ro(workspace) as con:
        lb = con.execute("SELECT * FROM leaderboard").df()
        analyses = con.execute(
            "SELECT analysis_id, kind, params, created FROM analyses WHERE analysis_id IN "
            "(SELECT analysis_id FROM analysis_rows)").df()
        analyses["params"] = analyses["params"].map(_params)
        analyses["dataset"] = analyses["params"].map(lambda p: p.get("dataset"))
        dataset = _choose_dataset(lb, analyses, dataset)
        lb = lb[lb["dataset"] == dataset]
        points = best_points(lb)
        ids = list(points["run_id"])
        info = con.execute("SELECT DISTINCT test_split, dataset_fingerprint FROM runs "
                           "WHERE run_id IN (SELECT unnest(?))", [ids]).df()
        bins = con.execute("SELECT * FROM bin_table WHERE run_id IN (SELECT unnest(?))",
                           [ids]).df()
        params = con.execute("SELECT * FROM run_params WHERE run_id IN (SELECT unnest(?))",
                             [ids]).df()
        runs = con.execute("SELECT * EXCLUDE (spec, versions) FROM runs "
                           "WHERE run_id IN (SELECT unnest(?))", [ids]).df()
        moe = con.execute("SELECT m.*, r.model, r.train_size FROM moe_experts m "
                          "JOIN runs r USING (run_id) WHERE r.dataset_name = ?",
                          [dataset]).df()
        analyses = analyses[analyses["dataset"] == dataset].reset_index(drop=True)
        aids = list(analyses["analysis_id"])
        have = {r[0] for r in con.execute("SELECT view_name FROM duckdb_views()").fetchall()}
        views = {v: con.execute(f"SELECT * FROM {v} WHERE analysis_id IN "
                                "(SELECT unnest(?))", [aids]).df()
                 for v in ANALYSIS_VIEWS if v in have}
        confusion = con.execute(
            "SELECT analysis_id, TRY_CAST(extra->>'true_bin' AS INTEGER) AS true_bin, "
            "TRY_CAST(extra->>'pred_bin' AS INTEGER) AS pred_bin, value AS count "
            "FROM analysis_rows WHERE analysis_id IN (SELECT unnest(?)) "
            "AND extra->>'section' = 'confusion' ORDER BY true_bin, pred_bin", [aids]).df()
        n_train = con.execute("SELECT max(n_train) FROM datasets WHERE fingerprint IN "
                              "(SELECT unnest(?))",
                              [list(info["dataset_fingerprint"].dropna())]).fetchone()[0]
        facts = _facts(con, ids)
        from engine.report.uncertainty_tables import load_uncertainty
        uq = load_uncertainty(con, ids)
        from engine.report.vit_variants import load_vit_variants
        variants = load_vit_variants(con, dataset)
        other = {}
        for r in analyses[~analyses["kind"].isin(KNOWN_KINDS)].itertuples():
            other[r.analysis_id] = con.execute(
                "SELECT key, metric, value FROM analysis_rows WHERE analysis_id = ? "
                "ORDER BY row_idx", [r.analysis_id]).df()
    return ReportData(workspace=Path(workspace), dataset=dataset, points=points,
                      noise=_main_noise(points), info=info, bins=bins, params=params, runs=runs,
                      moe_experts=moe, analyses=analyses, views=views, confusion=confusion,
                      other=other, n_train=n_train, facts=facts, uq=uq,
                      variants=variants)


def _facts(con, run_ids: list[str]) -> dict[str, dict[str, float]]:
    """{run_id: {key: num_value}} from run_facts (metrics.json `extra` as ingested:
    `train_seconds`, `model.n_params`, `model.alpha`, ...); empty for a store from before
    migration 003 (read-only readers do not migrate: the next `logg-engine ingest` does)."""
    if not run_ids or not con.execute("SELECT count(*) FROM duckdb_tables() "
                                      "WHERE table_name = 'run_facts'").fetchone()[0]:
        return {}
    rows = con.execute("SELECT run_id, key, num_value FROM run_facts WHERE run_id IN "
                       "(SELECT unnest(?)) AND num_value IS NOT NULL", [run_ids]).fetchall()
    out: dict[str, dict[str, float]] = {}
    for run_id, key, value in rows:
        out.setdefault(run_id, {})[key] = value
    return out


def best_points(lb: pd.DataFrame) -> pd.DataFrame:
    """One row per (model, train size, noise level): the finished run with the best test
    R² (ties: the newest), with `n_runs` = how many finished runs that point has."""
    if lb.empty:
        return lb.assign(n_runs=pd.Series(dtype="int64"))
    keys = ["model", "train_size", "noise_level"]
    lb = lb.assign(_r2=lb["r2"].fillna(float("-inf")))
    counts = lb.groupby(keys)["run_id"].transform("count")
    lb = lb.assign(n_runs=counts).sort_values(["_r2", "ended", "run_id"], na_position="first")
    best = lb.groupby(keys, sort=False).tail(1).drop(columns="_r2")
    return best.sort_values(["noise_level", "model", "train_size"]).reset_index(drop=True)


def _choose_dataset(lb: pd.DataFrame, analyses: pd.DataFrame, dataset: str | None) -> str:
    known = sorted(set(lb["dataset"].dropna().astype(str))
                   | set(analyses["dataset"].dropna().astype(str)))
    if not known:
        raise StoreError("no finished runs or analyses in the store yet", hint=NO_RESULTS_HINT)
    if dataset is None:
        if not lb.empty:
            return str(lb["dataset"].value_counts().index[0])
        return str(analyses.sort_values("created").iloc[-1]["dataset"])
    if dataset not in known:
        raise StoreError(f"no finished runs or analyses on dataset '{dataset}'",
                         key="dataset", hint=f"datasets with results: {', '.join(known)}")
    return dataset


def _main_noise(points: pd.DataFrame) -> float | None:
    """The noise level with the most points; ties go to the one closest to 1.0."""
    if points.empty:
        return None
    counts = points["noise_level"].value_counts()
    top = counts[counts == counts.max()].index
    return float(min(top, key=lambda v: (abs(v - 1.0), v)))


def _params(p) -> dict[str, Any]:
    if isinstance(p, dict):
        return p
    try:
        out = json.loads(p) if p else {}
    except (TypeError, ValueError):
        return {}
    return out if isinstance(out, dict) else {}


def _same(a, b) -> bool:
    try:
        return b is None or abs(float(a) - float(b)) < 1e-9
    except (TypeError, ValueError):
        return False
