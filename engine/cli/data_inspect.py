"""`logg-engine data inspect PATH [--json]`: what a pfsspec file or dataset folder holds
and whether it is valid. Heavy imports stay inside the command (fast --help)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer

from engine.cli.app import WorkspaceOpt, data_app


@data_app.command("inspect")
def inspect_cmd(
    path: Path = typer.Argument(..., help="A dataset.h5 file or a dataset folder "
                                "(or a dataset name under <workspace>/datasets)."),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
    sample: int = typer.Option(1000, "--sample", help="Rows used for the SNR statistics."),
    no_validate: bool = typer.Option(False, "--no-validate",
                                     help="Skip the full pass over every row (fast)."),
    workspace: Path = WorkspaceOpt,
) -> None:
    """Shapes, dtypes, chunking, parameter ranges, SNR, NaN fills and validation."""
    from engine.errors import EngineError

    try:
        report = _report(path, as_json, sample, no_validate, workspace)
    except EngineError as exc:  # printed here without rich markup: keys look like [a/b]
        from rich.console import Console

        Console(stderr=True).print(f"error: {exc.render()}", markup=False, highlight=False,
                                   soft_wrap=True)
        raise typer.Exit(exc.exit_code) from None
    if report["validation"]["ok"] is False:
        raise typer.Exit(3)


def _report(path: Path, as_json: bool, sample: int, no_validate: bool,
            workspace: Path | None) -> dict[str, Any]:
    from engine.errors import DataError
    from engine.io.inspect import inspect_path
    from engine.paths import workspace as resolve_ws

    target = path
    if not path.exists():
        if path.suffix == ".h5" or len(path.parts) > 1:
            raise DataError("no such file or folder", path=path,
                            hint="pass a dataset.h5 file, a dataset folder or a dataset name")
        from engine.io.dataset import resolve_dataset

        target = resolve_dataset(path, resolve_ws(workspace)).root  # lists what exists
    if as_json:
        report = inspect_path(target, sample_rows=sample, validate=not no_validate)
        typer.echo(json.dumps(report, indent=2, default=str))
    else:
        from engine.cli.progress import RichProgress

        with RichProgress("validate", transient=True) as cb:
            report = inspect_path(target, sample_rows=sample, validate=not no_validate,
                                  callbacks=[cb])
        _render(report)
    return report


def _render(report: dict[str, Any]) -> None:
    from rich.console import Console

    con = Console()
    if report["kind"] == "dataset":
        con.print(f"[bold]dataset[/] {report['name']}  {report['path']}")
        con.print(f"fingerprint {report['fingerprint']}  stored noise_level "
                  f"{report['noise_level']}  train rows {report['train_rows']}")
        built = _built_by(report.get("manifest") or {})
        if built:
            con.print(built)
        for role, shards in report["aliases"].items():
            con.print(f"  {role:5s} → {', '.join(shards) or '(none)'}")
        for name, rep in report["shards"].items():
            con.rule(f"[bold]{name}")
            _render_file(con, rep)
        ok = report["validation"]["ok"]
        con.print("[green]all shards valid[/]" if ok else "[red]some shards are invalid[/]")
    else:
        _render_file(con, report)


def _built_by(manifest: dict[str, Any]) -> str:
    """'built by generator 2.2 (lte) · preset bosz-1m · seed 0 · CRLB lattice · on cpu' from a
    built-in dataset's manifest; '' for pfsspec data (no generator section)."""
    version = manifest.get("generator_version")
    if version is None:
        return ""
    gen = manifest.get("generator") or {}
    physics = f" ({gen['physics']})" if gen.get("physics") else ""
    parts = [f"built by generator {version}{physics}"]
    for key, label in (("preset", "preset"), ("seed", "seed"), ("crlb_method", "CRLB")):
        if manifest.get(key) is not None:
            parts.append(f"{label} {manifest[key]}")
    if gen.get("device"):
        parts.append(f"on {gen['device']}")
    return " · ".join(parts)


def _render_file(con: Any, r: dict[str, Any]) -> None:
    from rich.table import Table

    if "arrays" not in r:  # did not open
        con.print(f"[bold]{r['path']}[/]")
        con.print("[red]INVALID[/]: ", end="")
        con.print(r["validation"]["error"], markup=False, highlight=False)
        return
    con.print(f"[bold]{r['path']}[/]  {r['n_rows']} rows × {r['n_pixels']} pixels, "
              f"{r['size_bytes'] / 2**20:.1f} MiB; wave {r['wave']['min']:.1f}–"
              f"{r['wave']['max']:.1f} Å, edges {r['wave']['edges_shape']}")
    t = Table("array", "shape", "dtype", "chunks", "compression", title="arrays")
    for name, a in r["arrays"].items():
        t.add_row(name, str(tuple(a["shape"])), a["dtype"], str(a["chunks"]),
                  str(a["compression"]))
    con.print(t)
    p = r.get("params")
    if p:
        t = Table("column", "min", "median", "max", "NaN",
                  title=f"params ({p['n_columns']} columns)")
        for col, s in p["ranges"].items():
            t.add_row(col, _g(s["min"]), _g(s["median"]), _g(s["max"]), str(s["n_nan"]))
        con.print(t)
        con.print(f"all-NaN columns: {', '.join(p['all_nan_columns']) or 'none'}")
        if p["nan_counts"]:
            con.print("partly NaN: " + ", ".join(f"{k} ({v})" for k, v in p["nan_counts"].items()))
    s = r.get("sample")
    if s:
        t = Table("estimator", "min", "median", "max", "mean",
                  title=f"SNR from the first {s['rows']} rows")
        for key in ("snr_q95", "snr_median", "snr_l2", "stored_snr_over_q95",
                    "flux_row_median"):
            if key in s:
                v = s[key]
                t.add_row(key, _g(v["min"]), _g(v["median"]), _g(v["max"]), _g(v["mean"]))
        con.print(t)
        if "mask_nonzero_fraction" in s:
            con.print(f"mask non-zero fraction (sample): {s['mask_nonzero_fraction']:.4g}")
    nf = r.get("nan_filled_error")
    if nf:
        con.print(f"NaN error pixels filled: edge {nf['edge']}, interior {nf['interior']} "
                  f"(over {nf['rows_checked']} rows read)")
    v = r["validation"]
    if v["ok"] is True:
        con.print("[green]valid[/] (full pass over every row)")
    elif v["ok"] is None:
        con.print("[yellow]not fully validated[/] (--no-validate)")
    else:
        con.print("[red]INVALID[/]: ", end="")
        con.print(v["error"], markup=False, highlight=False)


def _g(x: Any) -> str:
    return "—" if x is None else f"{x:.5g}"
