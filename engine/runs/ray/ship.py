"""Shipping a run folder between the driver and a Ray node as bytes (a gzip'd tar).

Why: when the cluster does not share the workspace's filesystem, the task runs the worker
in a scratch folder on its node and returns the whole run folder; the driver unpacks it
under <ws>/runs/<run_id>/ and ingests it there (the store stays single-writer)."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

from engine.atomic import atomic_dir, is_temp_name


def pack_folder(folder: Path) -> bytes:
    """The folder's contents (not its name) as tar.gz bytes; temporary files left out."""
    folder = Path(folder)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz", compresslevel=1) as tar:
        for path in sorted(folder.rglob("*")):
            if is_temp_name(path.name):
                continue
            tar.add(path, arcname=str(path.relative_to(folder)), recursive=False)
    return buf.getvalue()


def unpack_folder(data: bytes, dest: Path) -> Path:
    """Replace `dest` by the folder in `data`: extract next to it, then swap by rename,
    so a reader never sees a half-extracted run folder."""
    dest = Path(dest)
    with atomic_dir(dest) as incoming, \
            tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        tar.extractall(incoming, filter="data")
    return dest


def write_end_event(run_dir: Path, status: str, error: str | None) -> None:
    """Close a run whose worker died without its `end` event (killed, lost node), so the
    folder says what happened instead of leaving ingest to guess `lost`."""
    from engine.runs.folder import EventLog

    EventLog(Path(run_dir) / "events.jsonl")("end", status=status, error=error,
                                             closed_by="ray-executor")
