"""The CLI's command loader: an import error of a command module surfaces (it used to be
swallowed when the module itself was missing, silently dropping its commands)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from engine.cli.commands import MODULES, load_commands


def test_every_command_module_is_loaded():
    assert set(MODULES) <= set(sys.modules)


def test_a_missing_command_module_raises():
    with pytest.raises(ModuleNotFoundError) as exc:
        load_commands(["engine.cli.no_such_command_module"])
    assert exc.value.name == "engine.cli.no_such_command_module"


def test_a_command_module_with_a_broken_import_raises(tmp_path, monkeypatch):
    (tmp_path / "logg_broken_cmd.py").write_text("import logg_dependency_not_installed\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(ModuleNotFoundError) as exc:
        load_commands(["logg_broken_cmd"])
    assert exc.value.name == "logg_dependency_not_installed"


def test_logg_engine_fails_loudly_when_a_command_module_cannot_import():
    """A real process: with engine.cli.analysis unimportable, `logg-engine --help` must
    fail naming it instead of printing a help without the analysis commands."""
    code = ("import sys; sys.modules['engine.cli.analysis'] = None\n"
            "from engine.cli import main\nmain(['--help'])")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode != 0
    assert "engine.cli.analysis" in proc.stderr
    assert "Usage" not in proc.stdout
