"""The end of a log file without reading it whole: its last lines (logg-tui's job logs,
the run-state fold's events.jsonl) and its latest line (the study's progress lines and
logg-tui's Jobs screen)."""

from __future__ import annotations

import os
from pathlib import Path


def tail_lines(path: Path, n_lines: int | None = None, max_bytes: int = 256_000) -> list[str]:
    """The last lines of a text file without reading it whole ([] when missing). A read that
    starts mid-file drops its first line (probably cut). Carriage returns (a progress bar's
    redraws) end lines too."""
    try:
        with open(path, "rb") as fh:
            size = fh.seek(0, os.SEEK_END)
            fh.seek(max(0, size - max_bytes))
            data = fh.read()
    except OSError:
        return []
    lines = data.decode("utf-8", "replace").splitlines()
    if size > max_bytes and lines:
        lines = lines[1:]
    return lines if n_lines is None else lines[-n_lines:]


def last_line(path: Path, limit: int = 160) -> str:
    """The last non-empty line of a log, cut to `limit` characters ("" when none)."""
    lines = [x.strip() for x in tail_lines(path, max_bytes=4096) if x.strip()]
    return lines[-1][:limit] if lines else ""


def newest_log(folder: Path, pattern: str = "*.log") -> Path | None:
    """The most recently written log in `folder` (a study's running step), or None."""
    logs = [p for p in Path(folder).glob(pattern) if p.is_file()]
    return max(logs, key=lambda p: p.stat().st_mtime) if logs else None
