"""Import contracts (docs/dev-contracts.md, "Import contracts").

Two kinds of rule, two checks:
- which package may import which (the layers, engine never importing logg_tui): the
  import-linter contracts in pyproject.toml, run here and by `make lint`;
- what importing a module costs: the store, runs, eval, io, report, study, analysis, the CLI
  (with its --help) and the TUI must not load torch, lightgbm, sklearn or ray at import
  time. import-linter cannot say this (it also sees imports inside functions, which are
  how the heavy libraries are meant to be reached), so each group is imported in a fresh
  interpreter and its sys.modules is read.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
HEAVY = ("torch", "lightgbm", "sklearn", "ray")

# group -> packages whose every module is imported (the group must stay light)
LIGHT_GROUPS = {
    "base": ["engine.errors", "engine.paths", "engine.events", "engine.atomic",
             "engine.jsonsafe", "engine.procs", "engine.run_state", "engine.logtail",
             "engine.devices"],
    "store": ["engine.store"],
    "runs": ["engine.runs"],                 # engine.runs.ray included: Ray is lazy there
    "eval": ["engine.eval"],
    "io": ["engine.io"],
    "report": ["engine.report"],
    "study": ["engine.study"],
    "analysis": ["engine.analysis"],
    "cli": ["engine.cli"],
    "tui": ["logg_tui"],
    # what the registry loads to list models and presets (adapters import lazily)
    "model contract": ["engine.models.contract", "engine.models.base",
                       "engine.models.ridge_adapter", "engine.models.lgbm_adapter",
                       "engine.models.vit.adapter", "engine.models.ray_train"],
}

PROBE = """
import importlib, json, sys
for name in sys.argv[1:]:
    importlib.import_module(name)
print(json.dumps(sorted(m for m in sys.modules if m.split(".")[0] in {heavy!r})))
"""


def modules_of(package: str) -> list[str]:
    """`package` and, when it is a package, every module under it (from the source tree,
    so a module added later is checked without touching this test); not `__main__`
    (importing it runs the program)."""
    path = ROOT / Path(*package.split("."))
    if not path.is_dir():
        return [package]
    names = []
    for f in sorted(path.rglob("*.py")):
        if f.name == "__main__.py":
            continue
        parts = f.relative_to(ROOT).with_suffix("").parts
        names.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return names


def heavy_after_import(modules: list[str]) -> list[str]:
    """The heavy modules in sys.modules of a fresh interpreter after importing `modules`."""
    out = subprocess.run([sys.executable, "-c", PROBE.format(heavy=set(HEAVY)), *modules],
                         capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("group", list(LIGHT_GROUPS))
def test_group_imports_no_heavy_library(group):
    modules = [m for pkg in LIGHT_GROUPS[group] for m in modules_of(pkg)]
    assert modules
    assert heavy_after_import(modules) == []


def test_the_probe_sees_a_heavy_import():
    """Control: the same probe on the LightGBM estimator does report lightgbm (so the
    empty lists above are a finding, not a blind probe)."""
    assert "lightgbm" in heavy_after_import(["engine.models.lgbm"])


@pytest.mark.parametrize("argv", [["--help"], ["run", "--help"], ["scaling", "--help"],
                                  ["data", "generate", "--help"]])
def test_cli_help_loads_no_heavy_library(argv):
    code = ("import json, sys\n"
            "from engine.cli import main\n"
            f"sys.argv = ['logg-engine', *{argv!r}]\n"
            "try:\n    main()\nexcept SystemExit as exc:\n    assert not exc.code, exc.code\n"
            f"print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in "
            f"{set(HEAVY)!r})))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=ROOT, timeout=300)
    assert out.returncode == 0, out.stderr
    assert "Usage" in out.stdout
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []


def test_import_linter_contracts_are_kept():
    """The contracts in pyproject.toml [tool.importlinter] (layers, engine ↛ logg_tui,
    no heavy library imported anywhere in the light packages)."""
    lint = Path(sys.executable).with_name("lint-imports")
    if not lint.exists():
        pytest.skip("import-linter is not installed (pip install -e '.[test]')")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])}
    out = subprocess.run([str(lint), "--no-cache"], capture_output=True, text=True,
                         cwd=ROOT, env=env, timeout=300)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "0 broken" in out.stdout
