"""Imports every command module so that each registers its commands on the app.
Add new command modules here (one line each).

An import error of a command module propagates: a broken or missing module must stop
`logg-engine` with its traceback, not silently drop its commands from `--help`."""

from __future__ import annotations

import importlib
from collections.abc import Iterable

MODULES = (
    "engine.cli.data_generate",
    "engine.cli.data_inspect",
    "engine.cli.data_lattice",
    "engine.cli.run",
    "engine.cli.results",
    "engine.cli.analysis",
    "engine.cli.study",
)


def load_commands(modules: Iterable[str] = MODULES) -> None:
    """Import each command module (registering its commands); any ImportError raises."""
    for name in modules:
        importlib.import_module(name)


load_commands()
