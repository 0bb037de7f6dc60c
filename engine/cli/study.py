"""`logg-engine study`: the whole research programme as one resumable command.

Builds the dataset, runs the scaling grid (Ridge, LightGBM, the ViT as far as the machine
allows), the MoE oracles and gates, de-leakage, the ceiling and the template fit, then
prints the report. Stop it anywhere (Ctrl-C, kill -9, a reboot): the same command
continues where it stopped and never redoes a finished step."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import typer

from engine.cli.app import WorkspaceOpt, app, guard
from engine.study.state import hms


@app.command("study")
@guard
def study_cmd(
    study: str = typer.Argument("research", help="research (bosz-1m, 50k–1M), demo "
                                "(the default data, ~10 minutes) or tiny (seconds)."),
    max_size: str | None = typer.Option(None, "--max-size", help="Cap every training "
                                           "size (a quick pass), e.g. 100k."),
    device: str = typer.Option("cpu", "--device", help="Device for the ViT and the data build: "
                               "cpu, or cuda to also run the ViT sizes that wait for a GPU."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Print the plan and what is "
                                 "already done; run nothing."),
    physics: str | None = typer.Option(None, "--physics", help="The generator's physics: "
                                       "lte (v2: dataset NAME-lte, folder research-lte) or "
                                       "me (v1). Default: the study's own, lte for research, "
                                       "me for demo and tiny."),
    keep_going: bool = typer.Option(False, "--keep-going", help="Go on after a failed step."),
    report: bool = typer.Option(True, "--report/--no-report", help="Print the report at "
                                "the end."),
    workspace: Path | None = WorkspaceOpt,
) -> None:
    """Run (or continue) a whole study and print its report."""
    from dataclasses import replace

    _stop_on_signals()

    from engine.io.dataset import parse_size
    from engine.paths import workspace as resolve_ws
    from engine.study.plan import get_study, plan_steps
    from engine.study.state import StudyState, study_folder

    ws = resolve_ws(workspace)
    cfg = get_study(study)
    cfg = replace(cfg, device=device).with_physics(physics or cfg.default_physics)
    cfg = cfg.capped(parse_size(max_size) if max_size else None)
    steps = plan_steps(cfg, gpu=device == "cuda")
    folder = study_folder(ws, cfg.folder_name)
    _warn_if_older_data(ws, cfg, folder)
    if dry_run:
        _print_plan(steps, StudyState.load(folder))
        return
    outcomes = _run_with_progress(steps, ws, folder, keep_going)
    _print_times(outcomes)
    if report:
        from engine.report.document import build_report

        from engine.atomic import write_text

        text = build_report(ws, cfg.dataset)
        write_text(folder / "report.md", text)
        typer.echo(text)


def _stop_on_signals() -> None:
    """SIGINT and SIGTERM stop the study as Ctrl-C does (the running step cancels its run
    cleanly, the state keeps every finished step). A background job (`nohup make study &`)
    starts with SIGINT ignored, which Python keeps: `kill -INT` did nothing, and `kill` left
    the running step training without its study."""
    import signal

    def stop(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, stop)


def _warn_if_older_data(ws: Path, cfg: Any, folder: Path) -> None:
    """Say so when the study's dataset was built by an older generator version than this
    logg's: the study continues on those data (its runs stay apart by fingerprint), and the
    message says how to move it to the current version instead."""
    from engine.errors import DataError
    from engine.generator.physics import generator_version
    from engine.io.dataset import read_manifest
    from engine.paths import datasets_dir

    root = datasets_dir(ws) / cfg.dataset
    try:
        built = read_manifest(root).get("generator_version")
    except DataError:
        return              # the data step itself reports an unreadable manifest
    now = generator_version(cfg.physics)
    if built and str(built) != now:
        typer.echo(f"note: dataset {cfg.dataset} was built by generator {built}; this logg's "
                   f"{cfg.physics!r} physics is generator {now}. The study goes on with the "
                   f"{built} data (runs on data of different versions never mix in the store); "
                   f"to run it on {now} data, delete {root} and {folder} and start "
                   "it again.", err=True)


def _print_plan(steps: list, state: Any) -> None:
    for k, s in enumerate(steps, 1):
        mark = ("listed: " + s.skip_reason if s.skip_reason
                else "done" if state.done(s.key, s.digest) else "to do")
        typer.echo(f"{k:2d}. {s.title:<36} [{mark}]  logg-engine {' '.join(s.argv)}")


def _run_with_progress(steps: list, ws: Path, folder: Path, keep_going: bool) -> list:
    from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn,
                               TimeElapsedColumn)

    from engine.cli.progress import PlainLines
    from engine.logtail import last_line
    from engine.study.runner import run_study

    progress = Progress(TextColumn("[bold]study"), BarColumn(), MofNCompleteColumn(),
                        TextColumn("{task.fields[info]}"), TimeElapsedColumn(),
                        TextColumn("left ~{task.fields[left]}"))
    # no terminal (nohup … > log): a line every $LOGG_PROGRESS_EVERY_S s while a step runs,
    # with the step's own latest line from its log
    plain = None if progress.console.is_terminal else PlainLines()
    now: dict[str, Any] = {"done": 0, "left_s": None, "at": 0.0, "log": None}

    def plain_line() -> None:
        if plain is None or now["log"] is None:
            return
        left = now["left_s"]
        if left is not None:      # the estimate made when the step started, counted down
            left = max(0.0, left - (time.monotonic() - now["at"]))
        tail = last_line(now["log"])
        line = plain.line("study", now["done"], len(steps), f"· {tail}" if tail else "",
                          left_s=left)
        if line:
            progress.console.print(line, highlight=False, markup=False, soft_wrap=True)

    with progress:
        task = progress.add_task("study", total=len(steps), info="", left="?")

        def on_event(event: str, **f: Any) -> None:
            if event == "progress":
                progress.update(task, completed=f.get("done", 0), info=f.get("current", ""),
                                left=hms(f.get("left_s")))
                done = f.get("done", 0)
                now.update(done=done, left_s=f.get("left_s"), at=time.monotonic(),
                           log=folder / "steps" / f"{steps[done].key}.log"
                           if done < len(steps) else now["log"])
                plain_line()
            elif event == "heartbeat":
                plain_line()

        def on_step(k: int, step: Any, state: str) -> None:
            if state != "running":
                progress.console.print(f"[{k + 1}/{len(steps)}] {step.title}: {state}",
                                       highlight=False)
            else:
                progress.console.print(f"[{k + 1}/{len(steps)}] {step.title}: running  "
                                       f"(logg-engine {' '.join(step.argv)})", highlight=False)

        return run_study(steps, workspace=ws, folder=folder, callbacks=[on_event],
                         on_step=on_step, keep_going=keep_going)


def _print_times(outcomes: list) -> None:
    ran = [o for o in outcomes if o.status in ("finished", "failed")]
    if ran:
        typer.echo("step times: " + ", ".join(f"{o.step.key} {hms(o.seconds)}" for o in ran))
