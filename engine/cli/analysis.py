"""Analysis commands: `moe oracle`, `moe gate`, `deleakage`, `ceiling`.

Each one computes, writes an analysis folder (<ws>/analyses/<id>/), ingests it into the
store through engine.store.ingest_analysis, then prints the store's view of it (so what
you see is what was recorded) as a rich table, or JSON with --json. Heavy imports stay
inside the commands so `logg-engine --help` stays fast."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from engine.cli.app import WorkspaceOpt, app, guard
from engine.cli.results import _table  # shared table helper

moe_app = typer.Typer(help="Mixture-of-experts analyses: oracle headroom and learned gates.",
                      no_args_is_help=True)
app.add_typer(moe_app, name="moe")

JsonOpt = typer.Option(False, "--json", help="Print JSON instead of tables.")
DatasetOpt = typer.Option("default", "--dataset", help="Dataset name or folder.")
SizeOpt = typer.Option("10k", "--size", help="Training rows (e.g. 2000, 50k, 1M).")
NoiseOpt = typer.Option(1.0, "--noise-level", help="Noise multiplier on the error vector.")
SeedOpt = typer.Option(0, "--seed", help="Training-noise seed.")
BinsOpt = typer.Option("teff-mh", "--bins", help="teff-mh (9 bins) or snr (4 L2-SNR bins).")
ExpertOpt = typer.Option("ridge", "--expert", help="ridge or lgbm.")
OorOpt = typer.Option("clamp", "--out-of-range",
                      help="clamp (nearest bin, default) or fallback (global model).")
BootOpt = typer.Option(1000, "--n-boot", help="Bootstrap resamples for the 95 % CIs.")
IfMissingOpt = typer.Option(False, "--if-missing", help="Do nothing but show it when the "
                            "store already holds this analysis (same parameters, same data); "
                            "the study's steps use it.")


def _ws(workspace):
    from engine.paths import workspace as resolve

    return resolve(workspace)


def _record_and_show(ws: Path, result, views: list[tuple[str, str]], as_json: bool) -> str:
    """Write + ingest the analysis, then print each view's rows for it; its id."""
    from engine.analysis.record import write_analysis
    from engine.store.ingest_analysis import ingest_analysis

    aid = ingest_analysis(ws, write_analysis(ws, result))
    _show(ws, aid, views, as_json, {"kind": result.kind, "params": result.params,
                                    "summary": result.summary})
    return aid


def _stored(ws: Path, aid: str, views: list[tuple[str, str]], as_json: bool) -> bool:
    """`--if-missing`: when the store holds `aid`, say so and show it; True then."""
    from engine.store.reader import has_analysis

    if not has_analysis(ws, aid):
        return False
    if not as_json:
        typer.echo(f"{aid} is already in the store (same parameters, same data): not "
                   "recomputed; drop --if-missing to compute it again")
    _show(ws, aid, views, as_json, {"skipped": True})
    return True


def _show(ws: Path, aid: str, views: list[tuple[str, str]], as_json: bool,
          head: dict) -> None:
    """Print each view's rows for the analysis (what the store recorded)."""
    from engine.jsonsafe import json_safe
    from engine.store.reader import query_df

    frames = {}
    for title, sql, *post in views:
        df = query_df(ws, sql, [aid])
        frames[title] = post[0](df) if post and not as_json else df
    if as_json:
        out = {"analysis_id": aid, **head,
               **{t: df.to_dict(orient="records") for t, df in frames.items()}}
        typer.echo(json.dumps(json_safe(out), indent=2, default=str))
        return
    for title, df in frames.items():
        _table(df.drop(columns=[c for c in ("analysis_id",) if c in df.columns]),
               f"{title}  ({aid})")


def _explain_undefined_rho(ws: Path, aid: str) -> None:
    """Say why ρ is empty: the oracle's gain over the global model is not established, so
    there is no headroom for the gate to retain (engine.analysis.moe.rho)."""
    from engine.analysis.moe.rho import RHO_MIN_GAIN, NA_GAIN_CI, NA_NO_GAIN
    from engine.store.reader import query_df

    rows = query_df(ws, "SELECT subset, r2_oracle, r2_global FROM moe_gates WHERE "
                    "analysis_id = ? AND section = 'overall' AND rho IS NULL", [aid])
    for r in rows.itertuples():
        gain = r.r2_oracle - r.r2_global
        why = NA_NO_GAIN if not gain > RHO_MIN_GAIN else NA_GAIN_CI
        typer.echo(f"ρ ({r.subset}): {why}; oracle − global = {gain:+.4f}")


def _confusion_matrix(df):
    """Long (true_bin, pred_bin, count) rows → a K×K table (rows = true bin)."""
    m = df.pivot_table(index="true_bin", columns="pred_bin", values="count",
                       aggfunc="sum", fill_value=0)
    m.columns = [f"→{c}" for c in m.columns]
    return m.reset_index().astype(int)


def _callbacks(as_json: bool):
    if as_json:
        from contextlib import nullcontext

        return nullcontext(None)
    from engine.cli.progress import RichProgress

    return RichProgress("analysis", transient=True)


def _moe_cfg(**kw):
    from engine.analysis.moe.pipeline import MoeConfig
    from engine.io.dataset import parse_size

    kw["size"] = parse_size(kw["size"])
    return MoeConfig(**kw)


@moe_app.command("oracle")
@guard
def moe_oracle_cmd(bins: str = BinsOpt, expert: str = ExpertOpt, size: str = SizeOpt,
                   dataset: str = DatasetOpt, noise_level: float = NoiseOpt,
                   seed: int = SeedOpt, out_of_range: str = OorOpt, n_boot: int = BootOpt,
                   if_missing: bool = IfMissingOpt, as_json: bool = JsonOpt,
                   workspace: Path = WorkspaceOpt) -> None:
    """Oracle MoE: per-bin experts with true-label routing vs the global model.

    Per bin and overall, always on the SAME test rows, with 95 % bootstrap CIs."""
    from engine.analysis.moe.pipeline import planned_id, run_oracle

    ws = _ws(workspace)
    cfg = _moe_cfg(dataset=dataset, bins=bins, expert=expert, size=size,
                   noise_level=noise_level, seed=seed, out_of_range=out_of_range, n_boot=n_boot)
    if if_missing and _stored(ws, planned_id(ws, cfg), ORACLE_VIEWS, as_json):
        return
    with _callbacks(as_json) as cb:
        result = run_oracle(ws, cfg, [cb] if cb else None)
    _record_and_show(ws, result, ORACLE_VIEWS, as_json)


ORACLE_VIEWS = [
    ("MoE oracle per bin", "SELECT bin, label, expert, n_train, n_test, r2_oracle, "
     "r2_global, delta_r2, mae_oracle, mae_global, alpha, analysis_id FROM moe_bins "
     "WHERE analysis_id = ? ORDER BY bin"),
    ("MoE oracle overall (mask-aligned)", "SELECT subset, n, coverage, r2_oracle, "
     "r2_oracle_lo, r2_oracle_hi, r2_global, r2_global_lo, r2_global_hi, delta_r2, "
     "delta_r2_lo, delta_r2_hi, analysis_id FROM moe_overall WHERE analysis_id = ? "
     "ORDER BY subset DESC")]


@moe_app.command("gate")
@guard
def moe_gate_cmd(bins: str = BinsOpt,
                 gate: str = typer.Option("logreg", "--gate", help="logreg, mlp or linear."),
                 routing: str = typer.Option("soft", "--routing", help="soft, hard or fallback."),
                 tau: float = typer.Option(None, "--tau", help="Fallback threshold on max p "
                                           "(default 0.5 teff-mh, 0.4 snr)."),
                 features: str = typer.Option(None, "--features", help="phys13 (teff-mh "
                                              "default), phys37 or quality10 (snr default)."),
                 expert: str = ExpertOpt, size: str = SizeOpt, dataset: str = DatasetOpt,
                 noise_level: float = NoiseOpt, seed: int = SeedOpt,
                 out_of_range: str = OorOpt, n_boot: int = BootOpt,
                 if_missing: bool = IfMissingOpt, as_json: bool = JsonOpt,
                 workspace: Path = WorkspaceOpt) -> None:
    """A learned gate over frozen per-bin experts, scored by ρ.

    R² per bin, gate accuracy, confusion matrix and
    ρ = (R²_gate − R²_global)/(R²_oracle − R²_global) with a bootstrap CI."""
    from engine.analysis.moe.pipeline import planned_id, run_gate

    ws = _ws(workspace)
    cfg = _moe_cfg(dataset=dataset, bins=bins, expert=expert, size=size,
                   noise_level=noise_level, seed=seed, out_of_range=out_of_range,
                   n_boot=n_boot, gate=gate, routing=routing, tau=tau, features=features)
    if if_missing and _stored(ws, planned_id(ws, cfg), GATE_VIEWS, as_json):
        return
    with _callbacks(as_json) as cb:
        result = run_gate(ws, cfg, [cb] if cb else None)
    aid = _record_and_show(ws, result, GATE_VIEWS, as_json)
    if not as_json:
        _explain_undefined_rho(ws, aid)


GATE_VIEWS = [
    ("MoE gate", "SELECT section, subset, bin, label, n, r2_gate, r2_gate_lo, "
     "r2_gate_hi, r2_oracle, r2_global, rho, rho_lo, rho_hi, accuracy, fallback_rate, "
     "analysis_id FROM moe_gates WHERE analysis_id = ?"),
    ("Routing confusion (true → gate argmax)",
     "SELECT TRY_CAST(extra->>'true_bin' AS INTEGER) AS true_bin, "
     "TRY_CAST(extra->>'pred_bin' AS INTEGER) AS pred_bin, value AS count, analysis_id "
     "FROM analysis_rows WHERE analysis_id = ? AND extra->>'section' = 'confusion' "
     "ORDER BY true_bin, pred_bin", _confusion_matrix)]


@app.command("deleakage")
@guard
def deleakage_cmd(size: str = SizeOpt, dataset: str = DatasetOpt,
                  noise_level: float = NoiseOpt, if_missing: bool = IfMissingOpt,
                  as_json: bool = JsonOpt, workspace: Path = WorkspaceOpt) -> None:
    """Error-vector de-leakage study: SNR without log g?

    Ridge(α=1) R² of log g and of L2 SNR per representation;
    passed ⇔ log g R² < 0.05 and SNR R² > 0.5."""
    from engine.analysis.run_deleakage import planned_id, run_deleakage

    ws = _ws(workspace)
    if if_missing and _stored(ws, planned_id(ws, dataset=dataset, size=size,
                                             noise_level=noise_level), DELEAKAGE_VIEWS,
                              as_json):
        return
    result = run_deleakage(ws, dataset=dataset, size=size, noise_level=noise_level)
    _record_and_show(ws, result, DELEAKAGE_VIEWS, as_json)


DELEAKAGE_VIEWS = [
    ("Error-vector de-leakage", "SELECT strategy, n_features, logg_r2_train, "
     "logg_r2_test, snr_r2_train, snr_r2_test, passed, analysis_id FROM deleakage "
     "WHERE analysis_id = ?")]


@app.command("ceiling")
@guard
def ceiling_cmd(dataset: str = DatasetOpt,
                runs: str = typer.Option(None, "--runs", help="RUN,RUN,... (default: every "
                                         "finished run on the dataset)."),
                grid: Path = typer.Option(None, "--grid", help="A pfsspec regular-grid "
                                          "dataset.h5: CRLBs by grid central differences."),
                var: float = typer.Option(None, "--var", help="Label variance (default: the "
                                          "test split's; grid: the grid log g nodes')."),
                noise_level: float = NoiseOpt,
                edge: str = typer.Option("one-sided", "--edge", help="Grid edge nodes: "
                                         "one-sided or skip."),
                as_json: bool = JsonOpt, workspace: Path = WorkspaceOpt) -> None:
    """Physical ceiling R²_max from per-spectrum CRLBs, runs beside it.

    Per SNR and magnitude bin, with every run's R² (gap, η); or grid-Fisher CRLBs
    for a pfsspec regular-grid file (--grid)."""
    from engine.analysis.run_ceiling import run_ceiling, run_grid_ceiling

    ws = _ws(workspace)
    cols = ("section, run_id, model, scheme, bin, label, n, r2_max_pop, r2_max_bin, "
            "r2_max_median, r2_max_bayes, sigma_p10, sigma_p50, sigma_p90, r2_model, gap, eta, "
            "analysis_id")
    if grid is not None:
        result = run_grid_ceiling(ws, grid, noise_level=noise_level, var=var, edge=edge)
        cols = ("label, n, n_failed, r2_max_median, r2_max_mean, r2_max_p10, r2_max_p90, "
                "r2_max_pop, r2_max_bayes, sigma_p10, sigma_p50, sigma_p90, schur_median, "
                "crlb_orders, analysis_id")
        _record_and_show(ws, result, [("Physical ceiling", f"SELECT {cols} FROM ceiling "
                                       "WHERE analysis_id = ?")], as_json)
        return
    ids = [r.strip() for r in runs.split(",") if r.strip()] if runs else None
    result = run_ceiling(ws, dataset=dataset, runs=ids, var=var)
    if as_json:
        _record_and_show(ws, result, [("Physical ceiling", f"SELECT {cols} FROM ceiling "
                                       "WHERE analysis_id = ?")], as_json)
        return
    _record_and_show(ws, result, [
        ("Physical ceiling of the test split",
         "SELECT scheme, label, n, r2_max_pop, r2_max_median, r2_max_bayes, sigma_p10, "
         "sigma_p50, sigma_p90 FROM ceiling WHERE analysis_id = ? AND section = 'dataset' "
         "ORDER BY scheme, bin"),
        ("R² per SNR bin beside the ceiling (all rows: logg-engine query \"from ceiling\")",
         "SELECT c.bin, c.label, c.n, c.r2_max_pop, c.model, r.train_size, "
         "c.r2_model FROM ceiling c LEFT JOIN runs r USING (run_id) "
         "WHERE c.analysis_id = ? AND c.section = 'run' AND c.scheme = 'snr' "
         "ORDER BY c.bin, c.model, r.train_size",
         _ceiling_pivot),
    ], as_json)


def _ceiling_pivot(df):
    """Long (bin, run) rows → one row per SNR bin, one R² column per run (model@size)."""
    if df.empty:
        return df
    df = df.assign(run=df["model"] + "@" + df["train_size"].map(lambda n: f"{int(n):,}"))
    df = df.drop_duplicates(["bin", "run"])
    wide = df.set_index(["bin", "run"])["r2_model"].unstack("run")[
        list(dict.fromkeys(df["run"]))]  # runs in (model, size) order
    head = df.drop_duplicates("bin").set_index("bin")[["label", "n", "r2_max_pop"]]
    return head.join(wide).reset_index(drop=True).round(3)


export_app = typer.Typer(help="Export results from the store to files.", no_args_is_help=True)
app.add_typer(export_app, name="export")


@export_app.command("research")
@guard
def export_research_cmd(out: Path = typer.Argument(..., help="Folder to write results/ into."),
                        as_json: bool = JsonOpt, workspace: Path = WorkspaceOpt) -> None:
    """Write the research's result files (docs/analyses.md) from the store."""
    from engine.analysis.export import export_research

    done = export_research(_ws(workspace), out)
    if as_json:
        typer.echo(json.dumps(done, indent=2))
        return
    for rel, state in done.items():
        typer.echo(f"{state:8s} {Path(out) / rel}")


@export_app.command("results")
@guard
def export_results_cmd(out: Path = typer.Option(Path("docs/results.md"), "--out",
                                                help="The markdown page to write."),
                       dataset: str = typer.Option(None, "--dataset", help="Dataset name "
                                                   "(default: the one with most runs)."),
                       workspace: Path = WorkspaceOpt) -> None:
    """Write docs/results.md (tables, R²-vs-size and R²-vs-SNR figures) from the store."""
    from engine.report.results_page import write_results_page

    for path in write_results_page(_ws(workspace), out, dataset):
        typer.echo(f"written  {path}")
