"""The markdown results summary (`logg-engine report`), built from the store only.

Why: the research's reports carried hand-copied and stale numbers (docs/dev-contracts.md,
research pitfalls 3–4). This report has the research summary's sections (scaling curve, MoE oracle
and gates, de-leakage, model configurations, result files, summary table) and every number
in it is read from the results store at generation time. The single exception is the
"comparison with the research" table, whose reference column comes from
engine.report.research_reference and is labelled as the research's. A section whose data
is not in the store yet says which command fills it.

This module loads what the report needs (one `StoreReader`, the read API the CLI and
the TUI use too) into a
`ReportData`; the sections live in scaling_tables, moe_tables, sections and
compare."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, UTC
from pathlib import Path
from typing import Any

import pandas as pd

from engine.errors import StoreError
from engine.paths import store_path
from engine.store.connect import NO_RESULTS_HINT
from engine.store.reader import StoreReader

ANALYSIS_VIEWS = ("moe_bins", "moe_overall", "moe_gates", "deleakage", "ceiling")
KIND_VIEW = {"moe_oracle": "moe_bins", "moe_gate": "moe_gates", "deleakage": "deleakage",
             "ceiling": "ceiling"}  # analysis kind → the view its section reads
KNOWN_KINDS = tuple(KIND_VIEW)


@dataclass
class ReportData:
    """Everything one report reads, already restricted to one dataset."""

    workspace: Path
    dataset: str
    points: pd.DataFrame        # the scaling curve: latest finished run per model × train
    #                             size × noise level (StoreReader.scaling_curve, n_runs)
    noise: float | None         # the noise level most runs used (sections 1.2, 4, summary)
    info: pd.DataFrame          # test split / fingerprint of those runs
    bins: pd.DataFrame          # bin_table rows of those runs
    params: pd.DataFrame        # run_params of those runs, `value` decoded (param_value)
    runs: pd.DataFrame          # runs rows of those runs (command, device, run_dir, ...)
    analyses: pd.DataFrame      # this dataset's analyses that have rows (params parsed)
    views: dict[str, pd.DataFrame] = field(default_factory=dict)  # ANALYSIS_VIEWS rows
    confusion: pd.DataFrame = field(default_factory=pd.DataFrame)  # gate confusion rows
    other: dict[str, pd.DataFrame] = field(default_factory=dict)   # analyses of other kinds
    n_train: float | None = None  # training rows of the dataset (datasets table), if known
    fingerprint: str | None = None        # the one build of `dataset` this report is about
    generator_version: str | None = None  # that build's generator version (None: unknown)
    other_builds: list[tuple[str, str | None, int]] = field(default_factory=list)
    # (fingerprint, generator version, finished runs) of other builds with the same name
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
    now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    splits = ", ".join(map(str, d.info["test_split"].dropna().unique())) or "—"
    fps = ", ".join(map(str, d.info["dataset_fingerprint"].dropna().unique())) or "—"
    gen = d.generator_version or "unknown"
    others = "; ".join(f"`{d.dataset}@{fp}` (generator {gv or 'unknown'}, {n} runs)"
                       for fp, gv, n in d.other_builds)
    out = [f"# log g results summary — dataset `{d.dataset}`", "",
           f"> Generated {now} from the results store `{store_path(d.workspace)}`: every "
           "number below is read from it"
           + (", except the research's reference values in the comparison table (labelled)."
              if compare else "."), ">",
           f"> Test split(s): {splits}; dataset fingerprint(s): {fps}; "
           f"runs: {len(d.points)} (model × size × noise points); "
           f"analyses: {len(d.analyses)}.", ">",
           f"> Dataset build: fingerprint {d.fingerprint or '—'}, generator version {gen}; "
           "only runs and analyses on this build are shown"
           + (f". Other builds named `{d.dataset}` (left out; pick one with "
              f"`--dataset NAME@FINGERPRINT`): {others}." if others else "."),
           "", "---", ""]
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
    with StoreReader(workspace) as r:
        lb = _with_build(r, r.execute("SELECT * FROM leaderboard").df())
        analyses = r.execute(
            "SELECT analysis_id, kind, params, created FROM analyses WHERE analysis_id IN "
            "(SELECT analysis_id FROM analysis_rows)").df()
        analyses["params"] = analyses["params"].map(_params)
        analyses["dataset"] = analyses["params"].map(lambda p: p.get("dataset"))
        dataset, fp = _split_build(dataset)
        dataset = _choose_dataset(lb, analyses, dataset)
        fp, gen, others = _choose_build(lb, analyses, dataset, fp)
        points = r.scaling_curve(dataset=dataset, fingerprint=fp)
        ids = list(points["run_id"])
        info = r.execute("SELECT DISTINCT test_split, dataset_fingerprint FROM runs "
                         "WHERE run_id IN (SELECT unnest(?))", [ids]).df()
        bins = r.execute("SELECT * FROM bin_table WHERE run_id IN (SELECT unnest(?))",
                         [ids]).df()
        params = r.run_params(ids)
        runs = r.execute("SELECT * EXCLUDE (spec, versions) FROM runs "
                         "WHERE run_id IN (SELECT unnest(?))", [ids]).df()
        analyses = analyses[(analyses["dataset"] == dataset)
                            & analyses["params"].map(lambda p: _same_build(p, fp))
                            ].reset_index(drop=True)
        aids = list(analyses["analysis_id"])
        views = {v: r.execute(f"SELECT * FROM {v} WHERE analysis_id IN "
                              "(SELECT unnest(?))", [aids]).df()
                 for v in ANALYSIS_VIEWS if r.has(v)}
        confusion = r.execute(
            "SELECT analysis_id, TRY_CAST(extra->>'true_bin' AS INTEGER) AS true_bin, "
            "TRY_CAST(extra->>'pred_bin' AS INTEGER) AS pred_bin, value AS count "
            "FROM analysis_rows WHERE analysis_id IN (SELECT unnest(?)) "
            "AND extra->>'section' = 'confusion' ORDER BY true_bin, pred_bin", [aids]).df()
        n_train = r.execute("SELECT max(n_train) FROM datasets WHERE fingerprint IN "
                            "(SELECT unnest(?))",
                            [list(info["dataset_fingerprint"].dropna())]).fetchone()[0]
        facts = _facts(r, ids)
        from engine.report.uncertainty_tables import load_uncertainty
        from engine.report.vit_variants import load_vit_variants

        uq = load_uncertainty(r, ids)
        variants = load_vit_variants(r, dataset)
        other = {}
        for a in analyses[~analyses["kind"].isin(KNOWN_KINDS)].itertuples():
            other[a.analysis_id] = r.execute(
                "SELECT key, metric, value FROM analysis_rows WHERE analysis_id = ? "
                "ORDER BY row_idx", [a.analysis_id]).df()
    return ReportData(workspace=Path(workspace), dataset=dataset, points=points,
                      noise=_main_noise(points), info=info, bins=bins, params=params, runs=runs,
                      analyses=analyses, views=views, confusion=confusion,
                      other=other, n_train=n_train, facts=facts, fingerprint=fp,
                      generator_version=gen, other_builds=others, uq=uq, variants=variants)


def _with_build(reader, lb: pd.DataFrame) -> pd.DataFrame:
    """leaderboard rows with dataset_fingerprint / generator_version, also from a store
    not yet migrated to 004 (read-only readers do not migrate)."""
    if "dataset_fingerprint" in lb.columns:
        return lb
    fp = reader.df("SELECT run_id, dataset_fingerprint FROM runs")
    return lb.merge(fp, on="run_id", how="left").assign(generator_version=None)


def _split_build(dataset: str | None) -> tuple[str | None, str | None]:
    """'name@fingerprint' → (name, fingerprint prefix); 'name' → (name, None)."""
    if dataset is None or "@" not in dataset:
        return dataset, None
    name, fp = dataset.rsplit("@", 1)
    return name, fp or None


def _choose_build(lb: pd.DataFrame, analyses: pd.DataFrame, dataset: str, want: str | None
                  ) -> tuple[str | None, str | None, list[tuple[str, str | None, int]]]:
    """The one build (fingerprint) of `dataset` the report shows: `want` (a fingerprint
    prefix) if given, else the build with the most finished runs (ties: the newest run).
    Returns (fingerprint, generator version, the other builds). Runs on different builds
    (other generator versions) are never mixed (issue 11 item 6)."""
    rows = lb[lb["dataset"] == dataset]
    builds = rows.groupby("dataset_fingerprint", dropna=True).agg(
        n=("run_id", "count"), ended=("ended", "max"),
        gen=("generator_version", "first")).reset_index()
    if builds.empty:  # analyses only: their params name the build
        fps = [p.get("dataset_fingerprint") for p in
               analyses.loc[analyses["dataset"] == dataset, "params"]]
        builds = pd.DataFrame({"dataset_fingerprint": [f for f in dict.fromkeys(fps) if f],
                               "n": 0, "ended": pd.NaT, "gen": None})
    if want is not None:
        hit = builds[builds["dataset_fingerprint"].astype(str).str.startswith(want)]
        if len(hit) != 1:
            have = ", ".join(builds["dataset_fingerprint"].astype(str)) or "none"
            raise StoreError(f"dataset '{dataset}' has {len(hit)} builds matching "
                             f"fingerprint '{want}'", key="dataset",
                             hint=f"builds of '{dataset}': {have}")
        builds = pd.concat([hit, builds.drop(hit.index)])
    elif not builds.empty:
        builds = builds.sort_values(["n", "ended", "dataset_fingerprint"],
                                    ascending=False, na_position="last")
    if builds.empty:
        return None, None, []
    top = builds.iloc[0]
    others = [(str(r.dataset_fingerprint), None if pd.isna(r.gen) else str(r.gen), int(r.n))
              for r in builds.iloc[1:].itertuples()]
    return (str(top["dataset_fingerprint"]), None if pd.isna(top["gen"]) else str(top["gen"]),
            others)


def _same_build(params: dict[str, Any], fp: str | None) -> bool:
    """An analysis belongs to the chosen build when it names that fingerprint (analyses
    from before fingerprints were recorded name none and are kept)."""
    have = params.get("dataset_fingerprint")
    return fp is None or have is None or str(have) == fp


def _facts(reader: StoreReader, run_ids: list[str]) -> dict[str, dict[str, float]]:
    """{run_id: {key: num_value}} from run_facts (metrics.json `extra` as ingested:
    `train_seconds`, `model.n_params`, `model.alpha`, ...); empty for a store from before
    migration 003 (read-only readers do not migrate: the next `logg-engine ingest` does)."""
    if not run_ids or not reader.has("run_facts"):
        return {}
    rows = reader.execute("SELECT run_id, key, num_value FROM run_facts WHERE run_id IN "
                       "(SELECT unnest(?)) AND num_value IS NOT NULL", [run_ids]).fetchall()
    out: dict[str, dict[str, float]] = {}
    for run_id, key, value in rows:
        out.setdefault(run_id, {})[key] = value
    return out


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
