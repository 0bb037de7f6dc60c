"""`logg-engine run MODEL` and `logg-engine scaling`: build a RunSpec at the edge, run the
job in a worker subprocess (local executor), follow its events.jsonl with a progress bar,
print the summary read back from the run folder / the store.

Heavy imports stay inside the commands so `logg-engine --help` stays fast."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from engine.cli.app import WorkspaceOpt, app, guard

CANCEL_GRACE_S = 10.0
ExecutorOpt = typer.Option("local", "--executor", help="Where runs execute: local (a "
                           "subprocess here) or ray (a Ray cluster; pip install -e '.\\[ray]').")
AddressOpt = typer.Option(None, "--address", help="Ray cluster: auto (the running one) or "
                          "HOST:PORT. Default: start a private local Ray.")
WorkersOpt = typer.Option(1, "--workers", min=1, help="Data-parallel training workers "
                          "via Ray Train (vit: TorchTrainer/DDP, lgbm: distributed LightGBM); "
                          "joins --address or starts a local Ray. 1 = one process.")
FreshOpt = typer.Option(False, "--fresh", help="Train from the first step even when a lost, "
                        "cancelled or failed run with the same parameters left a checkpoint "
                        "(default: continue from it; the ViT).")
EXECUTORS = ("local", "ray")


@app.command("run")
@guard
def run_cmd(
    model: str = typer.Argument(..., help="Model: ridge, lgbm, vit."),
    size: str = typer.Option("100k", "--size", help="Training rows (first N in shard "
                             "order): 2000, 50k, 1M."),
    dataset: str | None = typer.Option(None, "--dataset", help="Dataset name under "
                                          "<workspace>/datasets or a folder path. "
                                          "Default: default."),
    noise_level: float = typer.Option(1.0, "--noise-level", help="Noise multiplier on "
                                      "the error vector (1.0 = nominal PFS)."),
    seed: int = typer.Option(0, "--seed", help="Training-noise seed."),
    overrides: list[str] | None = typer.Option(None, "--set", help="Override a preset "
                                                  "hyper-parameter: --set key=value."),
    preset: str | None = typer.Option(None, "--preset", help="Preset (default: the "
                                         "model's first)."),
    test_split: str = typer.Option("test", "--test-split", help="Split scored (frozen "
                                   "noise): test or a shard name."),
    val_split: str = typer.Option("val", "--val-split", help="Validation split ('' = none)."),
    device: str = typer.Option("auto", "--device", help="Device for torch models: auto, "
                               "cpu, cuda (Ridge/LightGBM run on CPU)."),
    detach: bool = typer.Option(False, "--detach", help="Start the run and return its id."),
    executor: str = ExecutorOpt,
    address: str | None = AddressOpt,
    workers: int = WorkersOpt,
    fresh: bool = FreshOpt,
    workspace: Path | None = WorkspaceOpt,
) -> None:
    """Train and evaluate one model; the run is recorded in runs/<run_id>/ and the store.
    A ViT run that was killed, cancelled or failed continues from its checkpoint when the
    same command runs again (a new run that names the old one in run.json `resumed_from`)."""
    from engine.errors import SpecError
    from engine.paths import workspace as resolve_ws
    from engine.runs.spec import build_spec

    ws = resolve_ws(workspace)
    spec = build_spec(model, workspace=ws, size=size, dataset=dataset, preset=preset,
                      overrides=overrides or (), noise_level=noise_level, seed=seed,
                      test_split=test_split, val_split=val_split or None, device=device,
                      executor=_check_executor(executor), workers=workers,
                      ray_address=address)
    if detach and executor == "ray":
        raise SpecError("--detach cannot be used with --executor ray", key="detach",
                        hint="the driver must stay to ingest the run; drop --detach")
    from engine.runs.executor import launch_run

    run_dir, proc = launch_run(ws, spec, _make_executor(executor, address), resume=not fresh)
    if detach:
        typer.echo(run_dir.name)
        return
    _report(run_dir, proc, _follow_foreground(run_dir, proc))




def _check_executor(name: str) -> str:
    from engine.errors import SpecError

    if name not in EXECUTORS:
        raise SpecError(f"unknown executor {name!r}", key="executor",
                        hint=f"use one of: {', '.join(EXECUTORS)}")
    return name


def _make_executor(name: str, address: str | None) -> Any:
    """The executor object; built before any run folder exists so a missing Ray leaves
    nothing behind."""
    if _check_executor(name) == "ray":
        from engine.runs.ray.executor import RayExecutor, RayOptions

        return RayExecutor(RayOptions(address=address))
    from engine.runs.executor import LocalExecutor

    return LocalExecutor()


def _follow_foreground(run_dir: Path, proc: Any, on_state: Any = None):
    """Follow the worker (its folded state drawn by `on_state`, else a progress bar);
    Ctrl-C cancels it (SIGTERM, SIGKILL after the grace period) and exits 130."""
    from engine.runs.executor import cancel_run, follow

    try:
        from engine.cli.progress import RichProgress

        if on_state is not None:
            return follow(run_dir, proc, on_state=on_state)
        with RichProgress(run_dir.name, transient=True) as bar:
            return follow(run_dir, proc, on_state=bar.show)
    except KeyboardInterrupt:
        from rich.console import Console

        Console(stderr=True).print(f"cancelling {run_dir.name} …", highlight=False)
        if hasattr(proc, "cancel"):  # a Ray run: ray.cancel → SIGTERM on its node
            proc.cancel(CANCEL_GRACE_S)
        else:
            cancel_run(run_dir, CANCEL_GRACE_S, also=[proc])
        Console(stderr=True).print(f"cancelled: {run_dir}", highlight=False)
        raise typer.Exit(130) from None


def _report(run_dir: Path, proc: Any, state: Any) -> None:
    """The run's summary from its metrics.json; failures as a RunError (exit 5)."""
    import json

    from engine.errors import RunError

    proc.wait()
    if state.status == "lost":
        raise RunError(f"the worker exited ({proc.returncode}) without an end event",
                       path=run_dir, hint=f"see {run_dir / 'stdout.log'}")
    if state.status == "cancelled":
        typer.echo(f"{run_dir.name}: cancelled")
        raise typer.Exit(130)
    if state.status != "finished":
        raise RunError(f"run failed: {state.error}", path=run_dir,
                       hint=f"see {run_dir / 'stdout.log'} and events.jsonl")
    from engine.eval.protocol import Evaluation

    ev = Evaluation.from_json(json.loads((run_dir / "metrics.json").read_text()))
    model = ev.extra.get("model") or {}
    facts = [f"{k}={_short(v)}" for k, v in model.items()
             if k in ("alpha", "best_iteration", "cache_hit")]
    facts.append(f"train {ev.extra.get('train_seconds', float('nan')):.1f} s")
    facts.append(f"peak RSS {ev.extra.get('peak_rss_mb', float('nan')):.0f} MB")
    typer.echo(f"{run_dir.name}  finished  ({', '.join(facts)})")
    typer.echo(f"  {ev.summary_line()}")
    typer.echo(f"  run folder: {run_dir}")


def _short(v: Any) -> str:
    return f"{v:.4g}" if isinstance(v, float) else str(v)


@app.command("scaling")
@guard
def scaling_cmd(
    models: str = typer.Option("ridge,lgbm", "--models", help="Comma-separated models."),
    sizes: str = typer.Option("50k,100k,200k,500k,1M", "--sizes",
                              help="Comma-separated training sizes."),
    dataset: str | None = typer.Option(None, "--dataset", help="Dataset name or path."),
    noise_level: float = typer.Option(1.0, "--noise-level"),
    seed: int = typer.Option(0, "--seed"),
    preset_ridge: str | None = typer.Option(None, "--preset-ridge"),
    preset_lgbm: str | None = typer.Option(None, "--preset-lgbm"),
    presets: list[str] | None = typer.Option(None, "--preset", help="MODEL=PRESET for "
                                                "any model (e.g. vit=vit-small)."),
    test_split: str = typer.Option("test", "--test-split"),
    val_split: str = typer.Option("val", "--val-split"),
    device: str = typer.Option("auto", "--device", help="Device for torch models."),
    overrides: list[str] | None = typer.Option(None, "--set", help="Override one "
                                                  "model's hyper-parameter: --set "
                                                  "MODEL:key=value (e.g. vit:max_epochs=3)."),
    executor: str = ExecutorOpt,
    address: str | None = AddressOpt,
    workers: int = WorkersOpt,
    fresh: bool = FreshOpt,
    workspace: Path | None = WorkspaceOpt,
) -> None:
    """Run the models × sizes grid (skipping points already in the store) and print the
    scaling table read from the store. A ViT point whose earlier run was killed,
    cancelled or failed continues from that run's checkpoint (--fresh: from the first step)."""
    from engine.errors import RunError, SpecError
    from engine.paths import workspace as resolve_ws
    from engine.runs.scaling import grid_table, plan_grid

    ws = resolve_ws(workspace)
    chosen = {"ridge": preset_ridge, "lgbm": preset_lgbm}
    for item in presets or ():
        m, sep, p = item.partition("=")
        if not sep:
            raise SpecError(f"bad --preset {item!r}", key="preset", hint="write MODEL=PRESET")
        chosen[m.strip()] = p.strip()
    per_model: dict[str, list[str]] = {}
    for item in overrides or ():
        m, sep, kv = item.partition(":")
        if not sep or "=" not in kv:
            raise SpecError(f"bad --set {item!r}", key="set", hint="write MODEL:key=value")
        per_model.setdefault(m.strip(), []).append(kv.strip())
    points = plan_grid([m.strip() for m in models.split(",") if m.strip()],
                       [s.strip() for s in sizes.split(",") if s.strip()], workspace=ws,
                       dataset=dataset, presets=chosen, noise_level=noise_level, seed=seed,
                       test_split=test_split, val_split=val_split or None, device=device,
                       workers=workers, ray_address=address, overrides=per_model)
    if _check_executor(executor) == "ray":
        results = _run_grid_on_ray(ws, points, address, resume=not fresh)
    else:
        results = _run_grid_with_progress(ws, points, resume=not fresh)
    table = grid_table(ws, [run_id for _, run_id, _ in results])
    _print_scaling(table, results, seed)
    failed = [(p, rid, st) for p, rid, st in results if st not in ("finished", "skipped")]
    if failed:
        raise RunError(", ".join(f"{rid} {st}" for _, rid, st in failed),
                       hint="see each run's stdout.log; rerun `logg-engine scaling` to "
                       "retry only those points")


def _run_grid_with_progress(ws: Path, points: list, *, resume: bool = True):
    """Overall grid bar + the current run's bar (from its events.jsonl)."""
    from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn,
                               TimeElapsedColumn)

    from engine.cli.progress import PlainLines, run_bar
    from engine.runs.executor import launch_run
    from engine.runs.scaling import run_grid

    progress = Progress(TextColumn("[bold]{task.description}"), BarColumn(),
                        MofNCompleteColumn(), TextColumn("{task.fields[info]}"),
                        TimeElapsedColumn())
    # no terminal (a log, a study step): the current run's bar as a plain line every
    # $LOGG_PROGRESS_EVERY_S s, so a 30-minute fit is not one silent "running" line
    plain = not progress.console.is_terminal
    lines = {"run": PlainLines()}                 # each run its own (run_one renews it)
    with progress:
        grid = progress.add_task("grid", total=len(points), info="")
        current = progress.add_task("run", total=None, info="")

        def on_current(state: Any) -> None:
            bar = run_bar(state)
            progress.update(current, **bar)
            line = plain and lines["run"].line(bar.get("description") or "run",
                                               bar["completed"], bar["total"], bar["info"])
            if line:
                progress.console.print(line, highlight=False, markup=False, soft_wrap=True)

        def on_point(k: int, point: Any, state: str) -> None:
            label = f"{point.spec.model} {point.spec.train_size}"
            if state == "skipped":
                progress.console.print(f"[{k + 1}/{len(points)}] {label}: in the store "
                                       f"({point.existing_run}), skipped", highlight=False)
            else:
                progress.console.print(f"[{k + 1}/{len(points)}] {label}: running",
                                       highlight=False)
            progress.update(grid, completed=k, info=label)

        def run_one(spec: Any):
            lines["run"] = PlainLines()
            run_dir, proc = launch_run(ws, spec, resume=resume)
            state = _follow_foreground(run_dir, proc, on_current)
            proc.wait()
            done = progress.tasks[current].completed  # early stopping ends below total
            progress.update(current, total=done or None, completed=done)
            progress.console.print(f"    {run_dir.name}: {state.status}"
                                   + (f" ({state.error})" if state.error else ""),
                                   highlight=False)
            return run_dir.name, state.status

        results = run_grid(points, workspace=ws, on_point=on_point, run_one=run_one)
        progress.update(grid, completed=len(points), info="done")
    return results


def _run_grid_on_ray(ws: Path, points: list, address: str | None, *, resume: bool = True):
    """Every missing point as a Ray task at once; the driver ingests each as it ends."""
    from rich.console import Console

    from engine.runs.ray.executor import RayOptions, run_grid_ray

    console = Console()

    def on_point(k: int, point: Any, state: str) -> None:
        label = f"{point.spec.model} {point.spec.train_size}"
        console.print(f"[{k + 1}/{len(points)}] {label}: {state}", highlight=False)

    try:
        return run_grid_ray(points, workspace=ws, options=RayOptions(address=address),
                            on_point=on_point, resume=resume)
    except KeyboardInterrupt:
        console.print("cancelled the unfinished Ray runs", highlight=False)
        raise typer.Exit(130) from None


def _print_scaling(table: Any, results: list, seed: int) -> None:
    from rich.console import Console
    from rich.table import Table

    skipped = {rid for _, rid, st in results if st == "skipped"}
    t = Table(title=f"scaling (seed {seed}; from results.duckdb)")
    for col in ("model", "size", "R² [95% CI]", "MAE dex [95% CI]", "n test", "run"):
        t.add_column(col)
    for row in table.itertuples(index=False):
        t.add_row(row.model, f"{int(row.train_size):,}",
                  f"{row.r2:.4f} [{row.r2_lo:.4f}, {row.r2_hi:.4f}]",
                  f"{row.mae:.4f} [{row.mae_lo:.4f}, {row.mae_hi:.4f}]", f"{int(row.n)}",
                  row.run_id + (" (reused)" if row.run_id in skipped else ""))
    Console().print(t)
