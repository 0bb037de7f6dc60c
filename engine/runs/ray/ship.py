"""Shipping a run folder between the driver and a Ray node as bytes (a gzip'd tar).

Why: when the cluster does not share the workspace's filesystem, the task runs the worker
in a scratch folder on its node and returns the whole run folder; the driver unpacks it
under <ws>/runs/<run_id>/ and ingests it there (the store stays single-writer)."""

from __future__ import annotations

import io
import os
import shutil
import tarfile
import time
from pathlib import Path


def pack_folder(folder: Path) -> bytes:
    """The folder's contents (not its name) as tar.gz bytes; temporary files left out."""
    folder = Path(folder)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz", compresslevel=1) as tar:
        for path in sorted(folder.rglob("*")):
            if path.name.startswith(".") and path.name.endswith(".tmp"):
                continue
            tar.add(path, arcname=str(path.relative_to(folder)), recursive=False)
    return buf.getvalue()


def unpack_folder(data: bytes, dest: Path) -> Path:
    """Replace `dest` by the folder in `data`: extract next to it, then swap by rename,
    so a reader never sees a half-extracted run folder."""
    dest = Path(dest)
    tag = f"{os.getpid()}-{time.monotonic_ns()}"
    incoming = dest.with_name(f".{dest.name}.incoming-{tag}")
    incoming.mkdir(parents=True)
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
            tar.extractall(incoming, filter="data")
    except BaseException:
        shutil.rmtree(incoming, ignore_errors=True)
        raise
    old = dest.with_name(f".{dest.name}.old-{tag}")
    if dest.exists():
        os.replace(dest, old)
    os.replace(incoming, dest)
    shutil.rmtree(old, ignore_errors=True)
    return dest


def write_end_event(run_dir: Path, status: str, error: str | None) -> None:
    """Close a run whose worker died without its `end` event (killed, lost node), so the
    folder says what happened instead of leaving ingest to guess `lost`."""
    from engine.runs.folder import EventLog

    EventLog(Path(run_dir) / "events.jsonl")("end", status=status, error=error,
                                             closed_by="ray-executor")
