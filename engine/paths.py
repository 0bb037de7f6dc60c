"""Where things live: the repository root and the user's workspace."""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent


def workspace(path: str | Path | None = None) -> Path:
    """The workspace root: explicit path, else $LOGG_WORKSPACE, else ./workspace."""
    root = Path(path or os.environ.get("LOGG_WORKSPACE") or "workspace")
    return root.expanduser().resolve()


def datasets_dir(ws: Path) -> Path:
    return ws / "datasets"


def runs_dir(ws: Path) -> Path:
    return ws / "runs"


def store_path(ws: Path) -> Path:
    return ws / "results.duckdb"
