"""What reproduces a run: git commit and dirty flag, package versions, host, pid and the
exact command. Captured automatically (docs/dev-contracts.md, research pitfall 2: runs
without seed or id could not be reconciled later)."""

from __future__ import annotations

import os
import platform
import socket
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

from engine.paths import REPO_ROOT

PACKAGES = ("logg", "numpy", "scipy", "pandas", "scikit-learn", "lightgbm", "torch", "h5py",
            "tables", "pyarrow", "duckdb")


def git_info(root: Path = REPO_ROOT) -> dict[str, Any]:
    """{sha, dirty} of the engine's checkout (read-only git calls); None when not a repo."""
    def _git(*args: str) -> str | None:
        try:
            out = subprocess.run(["git", "-C", str(root), *args], capture_output=True,
                                 text=True, timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            return None
        return out.stdout.strip() if out.returncode == 0 else None

    sha = _git("rev-parse", "HEAD")
    status = _git("status", "--porcelain", "--untracked-files=no") if sha else None
    return {"sha": sha, "dirty": None if status is None else bool(status)}


def versions() -> dict[str, str | None]:
    """Installed versions, read from package metadata (nothing heavy is imported)."""
    out: dict[str, str | None] = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def command_line(argv: list[str] | None = None) -> list[str]:
    """The command as typed (program name without its directory)."""
    argv = list(sys.argv if argv is None else argv)
    if argv:
        argv[0] = Path(argv[0]).name
    return argv


def provenance(argv: list[str] | None = None) -> dict[str, Any]:
    return {"git": git_info(), "versions": versions(), "host": socket.gethostname(),
            "pid": os.getpid(), "command": command_line(argv), "cwd": os.getcwd()}
