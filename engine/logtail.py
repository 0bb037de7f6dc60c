"""The latest line of a log file (a step's or a run's output), for one-line progress
displays: the study's plain lines (engine.cli.study) and logg-tui's Jobs screen."""

from __future__ import annotations

import os
from pathlib import Path


def last_line(path: Path, limit: int = 160) -> str:
    """The last non-empty line of a log (a bar's redraws end in carriage returns), cut to
    `limit` characters; empty when the file is missing."""
    try:
        with open(path, "rb") as fh:
            fh.seek(max(0, fh.seek(0, os.SEEK_END) - 4096))
            tail = fh.read().decode("utf-8", "replace")
    except OSError:
        return ""
    lines = [x.strip() for x in tail.replace("\r", "\n").split("\n") if x.strip()]
    return lines[-1][:limit] if lines else ""


def newest_log(folder: Path, pattern: str = "*.log") -> Path | None:
    """The most recently written log in `folder` (a study's running step), or None."""
    logs = [p for p in Path(folder).glob(pattern) if p.is_file()]
    return max(logs, key=lambda p: p.stat().st_mtime) if logs else None
