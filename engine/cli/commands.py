"""Imports every command module so that each registers its commands on the app.
Add new command modules here (one line each)."""

import importlib

_MODULES = [
    "engine.cli.data_generate",
    "engine.cli.data_inspect",
    "engine.cli.run",
    "engine.cli.results",
    "engine.cli.analysis",
    "engine.cli.study",
]

for _name in _MODULES:
    try:
        importlib.import_module(_name)
    except ModuleNotFoundError as exc:  # a command module not written yet
        if exc.name != _name:
            raise
