"""Store commands: `ingest`, `runs ls|show|compare`, `query`, `report`.

Heavy imports (duckdb, pandas, rich tables) stay inside the commands so `--help` is fast.
Engine errors are printed as one message and mapped to their exit code."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer

from engine.cli.app import WorkspaceOpt, app, guard, runs_app

JsonOpt = typer.Option(False, "--json", help="Print JSON instead of a table.")
CsvOpt = typer.Option(False, "--csv", help="Print CSV instead of a table.")


def _ws(workspace: Path | None) -> Path:
    from engine.paths import workspace as resolve

    return resolve(workspace)


def _emit_frame(df, as_json: bool, as_csv: bool, title: str | None = None) -> None:
    """A DataFrame as JSON records, CSV, or a rich table."""
    if as_json and as_csv:
        raise typer.BadParameter("choose one of --json and --csv")
    if as_json:
        from engine.jsonsafe import json_safe

        typer.echo(json.dumps(json_safe(df.to_dict(orient="records")), indent=2, default=str))
    elif as_csv:
        typer.echo(df.to_csv(index=False), nl=False)
    else:
        _table(df, title)


def _table(df, title: str | None = None) -> None:
    from rich.console import Console
    from rich.table import Table

    t = Table(title=title, show_lines=False)
    for c in df.columns:
        ids = c in ("run_id", "label", "key", "metric")  # never truncate what users copy
        width = max([len(str(c)), *(len(str(v)) for v in df[c])]) if ids and len(df) else None
        t.add_column(str(c), justify="right" if df[c].dtype.kind in "if" else "left",
                     min_width=width, no_wrap=ids)
    for row in df.itertuples(index=False):
        t.add_row(*(_cell(v) for v in row))
    con = Console()
    if not con.is_terminal:  # piped or captured: don't squeeze tables into 80 columns
        con = Console(width=max(con.width, 160))
    con.print(t)


def _cell(v: Any) -> str:
    import math

    if v is None:
        return "—"
    if isinstance(v, float):
        return "—" if not math.isfinite(v) else f"{v:.4g}" if abs(v) < 1e5 else f"{v:.0f}"
    s = str(v)
    return "—" if s in ("NaT", "nan", "<NA>", "None") else s


@app.command("ingest")
@guard
def ingest_cmd(
    runs: list[str] = typer.Argument(None, help="Run ids or run folders (default: all "
                                     "changed folders under <workspace>/runs)."),
    force: bool = typer.Option(False, "--force", help="Re-ingest even unchanged folders."),
    workspace: Path = WorkspaceOpt,
) -> None:
    """Copy run folders into the results store (idempotent; only changed runs)."""
    from engine.errors import StoreError
    from engine.paths import runs_dir
    from engine.store.ingest import ingest_all

    ws = _ws(workspace)
    dirs = None
    if runs:
        dirs = []
        for ref in runs:
            p = Path(ref)
            d = p if (p / "run.json").exists() else runs_dir(ws) / ref
            if not (d / "run.json").exists():
                raise StoreError("not a run folder (no run.json)", path=d,
                                 hint="pass a run id under <workspace>/runs or a run folder")
            dirs.append(d)
    report = ingest_all(ws, dirs, force=force)
    typer.echo(f"ingested {len(report.ingested)} run(s), {report.unchanged} unchanged"
               + (f", {len(report.errors)} unreadable" if report.errors else ""))
    for path, msg in report.errors:
        typer.echo(f"  skipped {path}: {msg}", err=True)
    if report.errors:
        raise typer.Exit(4)


@runs_app.command("ls")
@guard
def runs_ls(
    model: str = typer.Option(None, "--model", help="Only this model."),
    status: str = typer.Option(None, "--status", help="finished|failed|cancelled|running|lost"),
    dataset: str = typer.Option(None, "--dataset", help="Only this dataset name."),
    limit: int = typer.Option(None, "--limit", help="At most this many (newest first)."),
    as_json: bool = JsonOpt, as_csv: bool = CsvOpt, workspace: Path = WorkspaceOpt,
) -> None:
    """List runs, newest first, with R² [95% CI] and MAE."""
    from engine.store.runinfo import list_runs

    df = list_runs(_ws(workspace), model=model, status=status, dataset=dataset, limit=limit)
    if as_json or as_csv:
        _emit_frame(df, as_json, as_csv)
        return
    view = df[["run_id", "model", "dataset", "train_size", "noise_level", "status", "r2",
               "mae", "duration_s"]].copy()
    view["r2"] = [_ci(r, lo, hi) for r, lo, hi in zip(df["r2"], df["r2_lo"], df["r2_hi"])]
    _table(view.rename(columns={"train_size": "size", "noise_level": "noise",
                                "r2": "R² [95% CI]", "duration_s": "time_s"}), title="runs")


def _ci(v, lo, hi) -> str:
    """'0.712 [0.70, 0.72]' (— for missing)."""
    if _cell(v) == "—":
        return "—"
    return f"{v:.3f} [{lo:.3f}, {hi:.3f}]" if _cell(lo) != "—" else f"{v:.3f}"


@runs_app.command("show")
@guard
def runs_show(
    run: str = typer.Argument(..., help="Run id (or a unique prefix)."),
    as_json: bool = JsonOpt, workspace: Path = WorkspaceOpt,
) -> None:
    """Spec, provenance, reproduce command, metrics with CIs and the per-SNR-bin table."""
    import pandas as pd

    from engine.store.runinfo import show_run

    info = show_run(_ws(workspace), run)
    if as_json:
        typer.echo(json.dumps(info, indent=2, default=str))
        return
    typer.echo(f"run {info['run_id']}  status {info['provenance']['status']}")
    for section in ("spec", "params", "provenance"):
        typer.echo(f"\n{section}:")
        for k, v in info[section].items():
            typer.echo(f"  {k:20s} {_cell(v)}")
    typer.echo(f"\nreproduce: {info['reproduce'] or '—'}")
    typer.echo(f"eval key: {info['eval_key']}")
    for subset, ms in (info["metrics"] or {}).items():
        rows = [{"metric": m, "value": v["value"], "lo": v["lo"], "hi": v["hi"]}
                for m, v in ms.items()]
        _table(pd.DataFrame(rows), title=f"metrics ({subset})")
    if info["snr_bins"]:
        _table(pd.DataFrame(info["snr_bins"]), title="per SNR bin")


@runs_app.command("compare")
@guard
def runs_compare(
    a: str = typer.Argument(..., help="First run id."),
    b: str = typer.Argument(..., help="Second run id."),
    as_json: bool = JsonOpt, workspace: Path = WorkspaceOpt,
) -> None:
    """Config keys that differ, and metric deltas (B − A) with both CIs."""
    import pandas as pd

    from engine.store.runinfo import compare_runs

    cmp = compare_runs(_ws(workspace), a, b)
    if as_json:
        typer.echo(json.dumps(cmp, indent=2, default=str))
        return
    typer.echo(f"A = {cmp['a']}   B = {cmp['b']}")
    if not cmp["comparable"]:
        typer.echo("warning: different evaluation keys (test set / noise realisation); "
                   f"deltas are not like-for-like: {cmp['eval_key']}")
    diff = pd.DataFrame([{"key": k, "A": _cell(v["a"]), "B": _cell(v["b"])}
                         for k, v in cmp["config_diff"].items()])
    if diff.empty:
        typer.echo("identical configuration")
    else:
        _table(diff, title="configuration differences")
    _table(pd.DataFrame([{"metric": m, **v} for m, v in cmp["metrics"].items()]),
           title="metrics (delta = B − A)")


@app.command("query")
@guard
def query_cmd(
    sql: str = typer.Argument(..., help="One SQL statement (read-only). Views: see docs/sql.md."),
    limit: int = typer.Option(100_000, "--limit", min=1, help="At most this many rows."),
    as_json: bool = JsonOpt, as_csv: bool = CsvOpt, workspace: Path = WorkspaceOpt,
) -> None:
    """Run read-only SQL against the store (tables and views in docs/sql.md). Only
    SELECT-like statements run: no writes, files, ATTACH, INSTALL/LOAD or SET."""
    from engine.store.reader import user_query

    df, cut = user_query(_ws(workspace), sql, limit)
    _emit_frame(df, as_json, as_csv)
    if cut:
        typer.echo(f"(first {limit} rows; --limit raises it)", err=True)


@app.command("report")
@guard
def report_cmd(
    dataset: str = typer.Option(None, "--dataset", help="Dataset name (default: the one with "
                                "the most finished runs), or NAME@FINGERPRINT to pick one "
                                "build when several share the name (e.g. two generator "
                                "versions); otherwise the build with the most runs."),
    out: Path = typer.Option(None, "--out", help="Write the markdown here instead of stdout."),
    compare: bool = typer.Option(True, "--compare/--no-compare", help="Add the table of our "
                                 "numbers beside the research's reference values (labelled)."),
    workspace: Path = WorkspaceOpt,
) -> None:
    """Markdown results summary computed from the store: the research summary's sections
    (scaling, MoE oracle and gates, de-leakage, ceiling, configurations, files, summary);
    a section without data says which command fills it."""
    from engine.report.document import build_report

    text = build_report(_ws(workspace), dataset, compare=compare)
    if out is None:
        typer.echo(text, nl=False)
        return
    from engine.atomic import write_text

    write_text(out, text)
    typer.echo(f"wrote {out}")
