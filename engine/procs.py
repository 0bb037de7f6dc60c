"""Process liveness, shared by the executor, ingest's lost-run check and the TUI."""

from __future__ import annotations

import os


def pid_alive(pid: int) -> bool:
    """True while `pid` exists on this host and is not a zombie (a zombie child of
    someone else still answers kill(pid, 0))."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(") ", 1)[1][0] != "Z"
    except (OSError, IndexError):
        return True
