"""The typer application objects. Command modules decorate these; nothing heavy is
imported here so `logg-engine --help` starts fast."""

from __future__ import annotations

import typer

app = typer.Typer(
    name="logg-engine",
    help="logg: build datasets, train and evaluate log g models, run the analyses, "
    "and record everything in a DuckDB results store.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)

data_app = typer.Typer(help="Build, inspect and calibrate datasets.", no_args_is_help=True)
app.add_typer(data_app, name="data")

runs_app = typer.Typer(help="List, show and compare runs in the store.", no_args_is_help=True)
app.add_typer(runs_app, name="runs")

WorkspaceOpt = typer.Option(
    None, "--workspace", "-w", envvar="LOGG_WORKSPACE",
    help="Workspace folder (datasets/, runs/, results.duckdb). Default ./workspace.",
)

# the generator's device (data generate, data lattice build, data calibrate); cpu by default:
# a GPU computes the same spectra to float32 rounding, not to the bit (docs/generator.md)
GeneratorDeviceOpt = typer.Option(
    "cpu", "--device",
    help="Where the synthesis and the exact CRLB compute: cpu (default), cuda, cuda:N or "
    "auto (a GPU when torch sees one).",
)


def guard(fn):
    """Command decorator: EngineErrors print one message (file, field, fix) on stderr and
    exit with their class's code — also when a command is invoked without `main()`
    (e.g. typer's test runner)."""
    import functools

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        from engine.errors import EngineError

        try:
            return fn(*args, **kwargs)
        except EngineError as exc:
            from rich.console import Console

            Console(stderr=True).print(f"error: {exc.render()}", markup=False,
                                       highlight=False, soft_wrap=True)
            raise typer.Exit(exc.exit_code) from None
    return wrapper
