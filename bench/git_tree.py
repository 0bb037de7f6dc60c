"""Shared by the side-by-side benches: a git revision's `engine/` and `data/` exported
into a folder, so a baseline runs from its own code in a subprocess (PYTHONPATH=dest)."""

from __future__ import annotations

import subprocess
import tarfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def export_tree(rev: str, dest: Path) -> None:
    """`git archive` of rev's engine/ and data/, unpacked into dest."""
    tar = Path(dest) / "tree.tar"
    subprocess.run(["git", "-C", str(ROOT), "archive", "-o", str(tar), rev, "engine", "data"],
                   check=True)
    with tarfile.open(tar) as t:
        t.extractall(dest, filter="data")
