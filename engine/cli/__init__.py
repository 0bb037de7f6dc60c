"""`logg-engine` entry point: registers the command modules and maps engine errors
to exit codes with a one-paragraph message instead of a traceback."""

from __future__ import annotations

import sys

from engine.cli.app import app
from engine.errors import EngineError

# Command modules register themselves on import (each keeps heavy imports inside
# its command functions).
from engine.cli import commands as _commands  # noqa: F401,E402


def main(argv: list[str] | None = None) -> None:
    """Run the CLI. Usage errors exit 2 (typer); engine errors exit with their class's
    code and a message naming file, field and fix; nothing prints a traceback."""
    try:
        app(args=argv)  # standalone mode: typer exits by itself on success/usage errors
    except EngineError as exc:
        from rich.console import Console

        console = Console(stderr=True)
        console.print("[bold red]error:[/] ", end="")
        console.print(exc.render(), markup=False, highlight=False, soft_wrap=True)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)
