"""`logg-engine data generate` and `logg-engine data calibrate`: build a dataset with the
built-in generator, and print its calibration figures beside the research targets.
Heavy imports (torch, the generator) stay inside the commands so --help stays fast."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from engine.cli.app import GeneratorDeviceOpt, WorkspaceOpt, data_app


@data_app.command("generate")
def generate_cmd(
    preset: str = typer.Option("default", "--preset", "-p",
                               help="tiny | default | bosz-1m (see docs/generator.md)."),
    size: str = typer.Option(None, "--size", help="Total training rows, e.g. 50k (overrides "
                             "the preset; same shard naming)."),
    out: Path = typer.Option(None, "--out", help="Output folder. Default "
                             "<workspace>/datasets/<name>/."),
    seed: int = typer.Option(0, "--seed", help="Master seed; each shard is seeded from "
                             "(seed, shard name)."),
    name: str = typer.Option(None, "--name", help="Dataset name (default: the preset)."),
    no_crlb: bool = typer.Option(False, "--no-crlb", help="Skip the CRLB columns of val/test."),
    compile_: str = typer.Option("auto", "--compile", help="torch.compile: auto | on | off "
                                 "(the synthesis; with --physics lte also the CRLB Jacobian "
                                 "of long passes)."),
    physics: str = typer.Option("me", "--physics", help="me: one-layer Milne–Eddington "
                                "(generator 1.0, fast, default); lte: depth-resolved LTE over "
                                "model atmospheres (generator 2.2, BOSZ-like gravity "
                                "information, 10–20× slower; docs/generator-v2.md)."),
    crlb_method: str = typer.Option(None, "--crlb-method", help="How the val/test CRLB "
                                    "columns are computed: exact (jacfwd of the model at θ) "
                                    "or lattice (grid central differences of the node lattice, "
                                    "the research's protocol; --physics lte with a snapped "
                                    "preset only). Default: lattice for lattice builds, else "
                                    "exact (docs/generator-v2.md)."),
    keep_free: str = typer.Option("0", "--keep-free", help="Disk space the build must leave "
                                  "free, e.g. 2G or 500M (checked before writing)."),
    device: str = GeneratorDeviceOpt,
    workspace: Path = WorkspaceOpt,
) -> None:
    """Generate a pfsspec-layout dataset. Checks the disk space first; an interrupted
    build resumes where it stopped (finished shards are verified, a partial shard
    continues from its last checkpoint)."""
    from engine.cli.progress import RichProgress
    from engine.errors import SpecError
    from engine.generator.build import build_dataset
    from engine.generator.presets import get_preset

    get_preset(preset)
    n = None
    if size is not None:
        from engine.io.dataset import parse_size
        n = parse_size(size)
    if name is not None and (not name or "/" in name or name.startswith(".")):
        raise SpecError(f"bad dataset name {name!r}", key="name",
                        hint="use a plain folder name like my-set")
    if compile_ not in ("auto", "on", "off"):
        raise SpecError(f"bad --compile {compile_!r}", key="compile", hint="auto, on or off")
    reserve = parse_bytes(keep_free)
    from engine.devices import resolve_device
    dev = str(resolve_device(device))         # a missing GPU: one error before any output
    with RichProgress(f"generate {name or preset}") as cb:
        root = build_dataset(preset, out=out, seed=seed, size=n, name=name,
                             crlb=not no_crlb, compile=compile_, callbacks=[cb],
                             workspace=workspace, keep_free=reserve, physics=physics,
                             crlb_method=crlb_method, device=dev)
    typer.echo(f"dataset written: {root}")


def parse_bytes(text: str) -> int:
    """'2G' → 2e9, '500M' → 5e8, '0' → 0 (decimal units, as the estimate prints)."""
    import re

    from engine.errors import SpecError
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([kKmMgGtT]?)[bB]?\s*", str(text))
    if not m:
        raise SpecError(f"bad --keep-free {text!r}", key="keep-free",
                        hint="use a size like 0, 500M, 2G")
    mult = {"": 1, "k": 1e3, "m": 1e6, "g": 1e9, "t": 1e12}[m.group(2).lower()]
    return int(float(m.group(1)) * mult)


@data_app.command("calibrate")
def calibrate_cmd(
    dataset: str = typer.Argument(..., help="Dataset name under <workspace>/datasets or a folder."),
    as_json: bool = typer.Option(False, "--json", help="Print the figures as JSON."),
    per_mag_n: int = typer.Option(192, "--per-mag-n", help="Prior draws in the fixed-mag batch "
                                   "(each figure's note gives its median's bootstrap SE)."),
    ridge: bool = typer.Option(True, "--ridge/--no-ridge",
                               help="Fit the Ridge learnability check."),
    device: str = GeneratorDeviceOpt,
    ridge_rows: str = typer.Option(None, "--ridge-rows",
                                   help="Training rows for Ridge (default all)."),
    seed: int = typer.Option(0, "--seed"),
    grid: bool = typer.Option(False, "--grid", help="The research's Fisher protocol instead "
                              "of the prior draws: all 30,240 nodes of the workspace's node "
                              "lattice (generator v2 datasets; grid central differences, "
                              "mags 18–23, fixed conditions). Needs the complete lattice "
                              "(`logg-engine data lattice build`); never builds it."),
    grid_snr: str = typer.Option("research", "--grid-snr", help="--grid noise: research "
                                 "(per magnitude, the SNR of the research's grid sets) or "
                                 "k0 (the training sets' typical conditions)."),
    workspace: Path = WorkspaceOpt,
) -> None:
    """Every calibration figure of DATASET beside its research target."""
    from engine.errors import SpecError
    from engine.generator.calibrate import calibrate
    from engine.io.dataset import parse_size, resolve_dataset
    from engine.paths import workspace as resolve_ws

    if per_mag_n < 2:
        raise SpecError("--per-mag-n must be ≥ 2", key="per-mag-n")
    rows = parse_size(ridge_rows) if ridge_rows else None
    ds = resolve_dataset(dataset, resolve_ws(workspace))
    from engine.devices import resolve_device
    dev = str(resolve_device(device))         # a missing GPU: one error before any work

    from engine.generator.calibrate_grid import check_grid_snr
    check_grid_snr(grid_snr)
    if grid:   # refuse before any Ridge fit when the lattice is missing
        from engine.generator.calibrate_grid import dataset_lattice
        lattice = dataset_lattice(ds, resolve_ws(workspace))

    def figures(callbacks=None) -> list:
        if grid:
            from engine.generator.calibrate import snr_figures
            from engine.generator.calibrate_grid import grid_figures
            figs = snr_figures(ds) + grid_figures(lattice, callbacks=callbacks,
                                                  snr=grid_snr)
        else:
            figs = calibrate(ds, per_mag_n=per_mag_n, seed=seed, callbacks=callbacks,
                             device=dev)
        if ridge:
            from engine.models.ridge_calibration import ridge_figure

            figs += ridge_figure(ds, rows, seed, callbacks)
        return figs

    if as_json:
        figs = figures()
        typer.echo(json.dumps({"dataset": str(ds.root), "figures": [f.to_dict() for f in figs]},
                              indent=2))
        return
    from rich.console import Console
    from rich.table import Table

    from engine.cli.progress import RichProgress
    with RichProgress("calibrate", transient=True) as cb:
        figs = figures([cb])
    table = Table(title=f"calibration of {ds.name}")
    for col in ("figure", "value", "target", "ok", "note"):
        table.add_column(col)
    for f in figs:
        ok = f.ok()
        mark = "" if ok is None else ("[green]✓[/]" if ok else "[red]✗[/]")
        table.add_row(f.name, f"{f.value:.4g}", "" if f.target is None else f"{f.target:g}"
                      + (f" ± {f.tolerance:g}" if f.tolerance else ""), mark, f.note)
    Console().print(table)
