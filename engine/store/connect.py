"""Opening the results store safely: identity check, schema/migrations, lock retries.

DuckDB allows one read-write process OR many read-only ones on a file, never both, and a
conflict surfaces as an IOException ("Could not set lock on file ..."). Writers therefore
serialise on a file lock (`<ws>/results.duckdb.lock`) and every open (read-write or
read-only) retries with exponential backoff while another process holds the file. A file
at the store path that is not ours (not DuckDB, or DuckDB without `schema_meta`) is never
written to: it raises StoreError before any read-write open."""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine.errors import StoreError
from engine.paths import store_path
from engine.store.transaction import transaction

if TYPE_CHECKING:
    from duckdb import DuckDBPyConnection

SCHEMA_FILE = Path(__file__).with_name("schema.sql")
MIGRATIONS_DIR = Path(__file__).with_name("migrations")
NO_RESULTS_HINT = "run `logg-engine run ridge --size 10k`"
DUCKDB_MAGIC = b"DUCK"  # bytes 8..12 of every DuckDB database file
DEFAULT_TIMEOUT_S = float(os.environ.get("LOGG_STORE_TIMEOUT", "60"))
# The on-disk format new stores are written in: the newest one the pinned DuckDB CLI
# (`duckdb-cli`, pyproject.toml) reads, so `duckdb workspace/results.duckdb` opens them.
STORAGE_COMPATIBILITY = "v1.5.0"
# Every read-only connection is locked down (engine.store.reader applies user SQL through
# it): no files, no extensions, no secrets, settings frozen. One config for all readers,
# because DuckDB refuses a second connection to a file with a different config.
READ_ONLY_CONFIG = {
    "enable_external_access": False,
    "autoinstall_known_extensions": False,
    "autoload_known_extensions": False,
    "allow_community_extensions": False,
    "allow_unsigned_extensions": False,
    "allow_persistent_secrets": False,
    "lock_configuration": True,
}


def lock_path(ws: Path) -> Path:
    return Path(ws) / "results.duckdb.lock"


def base_version(sql: str | None = None) -> int:
    """The version schema.sql declares (`-- schema-version: N`, the base schema)."""
    text = SCHEMA_FILE.read_text() if sql is None else sql
    m = re.search(r"--\s*schema-version:\s*(\d+)", text)
    if not m:
        raise StoreError("schema.sql declares no '-- schema-version: N' line", path=SCHEMA_FILE)
    return int(m.group(1))


def schema_version(directory: Path = MIGRATIONS_DIR) -> int:
    """The latest schema version this engine knows: the base or the newest migration."""
    return max([base_version(), *(n for n, _ in migrations(directory))])


def migrations(directory: Path = MIGRATIONS_DIR) -> list[tuple[int, Path]]:
    """(N, path) of migrations/NNN_*.sql, sorted by N."""
    found = []
    for p in sorted(Path(directory).glob("*.sql")):
        m = re.match(r"(\d+)_", p.name)
        if m:
            found.append((int(m.group(1)), p))
    return sorted(found)


def is_lock_conflict(exc: BaseException) -> bool:
    """True for DuckDB's 'another process holds the file' errors (worth retrying)."""
    text = str(exc).lower()
    return ("could not set lock" in text or "conflicting lock" in text
            or "resource temporarily unavailable" in text)


def retry_on_lock(fn: Callable[[], Any], *, what: str, path: Path,
                  timeout_s: float = DEFAULT_TIMEOUT_S) -> Any:
    """Call fn, retrying with exponential backoff (50 ms → 1 s) while DuckDB reports a lock
    conflict; StoreError once `timeout_s` has passed."""
    import duckdb

    delay, deadline = 0.05, time.monotonic() + timeout_s
    while True:
        try:
            return fn()
        except (duckdb.IOException, duckdb.ConnectionException) as exc:
            if not is_lock_conflict(exc) or time.monotonic() + delay > deadline:
                if is_lock_conflict(exc):
                    raise StoreError(f"could not {what}: another process holds the store "
                                     f"for more than {timeout_s:.0f} s", path=path,
                                     hint="close other logg processes or wait; "
                                     "LOGG_STORE_TIMEOUT raises the limit") from exc
                raise StoreError(f"could not {what}: {exc}", path=path) from exc
            time.sleep(delay)
            delay = min(1.0, delay * 2)


def check_file_identity(path: Path) -> None:
    """StoreError (file untouched) unless `path` starts like a DuckDB database file."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(16)
    except OSError as exc:
        raise StoreError(f"cannot read the results store: {exc}", path=path) from exc
    if len(head) < 12 or head[8:12] != DUCKDB_MAGIC:
        raise StoreError("this file is not a DuckDB database, so it is not a logg results "
                         "store; it was left unchanged", path=path,
                         hint="move it away (or point --workspace elsewhere); "
                         "`logg-engine ingest` then rebuilds the store from runs/")


def read_version(con: DuckDBPyConnection, path: Path) -> int:
    """schema_meta's version; StoreError when the DuckDB file is not a logg store."""
    has = _scalar(con, "SELECT count(*) FROM information_schema.tables "
                       "WHERE table_name = 'schema_meta'")
    if not has:
        raise StoreError("this DuckDB file has no schema_meta table, so it is not a logg "
                         "results store; it was left unchanged", path=path,
                         hint="move it away; `logg-engine ingest` rebuilds the store "
                         "from runs/")
    v = _scalar(con, "SELECT max(version) FROM schema_meta")
    return int(v or 0)


def _scalar(con: DuckDBPyConnection, sql: str) -> Any:
    """The one value of an aggregate query (None if it returned no row)."""
    row = con.execute(sql).fetchone()
    return None if row is None else row[0]


def _connect(path: Path, read_only: bool,
             config: dict[str, Any] | None = None) -> DuckDBPyConnection:
    import duckdb

    if read_only:
        config = READ_ONLY_CONFIG
    return duckdb.connect(str(path), read_only=read_only, config=dict(config or {}))


@contextmanager
def connect_ro(workspace: Path | str, *, timeout_s: float = DEFAULT_TIMEOUT_S) -> Iterator[Any]:
    """A short-lived, locked-down read-only connection (close it quickly: it blocks
    writers). Only engine.store.reader calls this: everything else reads through it."""
    from engine.paths import workspace as resolve

    path = store_path(resolve(workspace))
    if not path.exists():
        raise StoreError("no results yet", path=path, hint=NO_RESULTS_HINT)
    check_file_identity(path)
    con = retry_on_lock(lambda: _connect(path, True), what="open the store read-only",
                        path=path, timeout_s=timeout_s)
    try:
        version = read_version(con, path)
        if version > schema_version():
            raise StoreError(f"store schema version {version} is newer than this engine "
                             f"({schema_version()})", path=path, hint="upgrade logg")
        yield con
    finally:
        con.close()


def create_store(path: Path) -> None:
    """Build a fresh store (schema.sql, then every migration) next to `path` and rename it
    into place (never half-written)."""
    from engine.atomic import atomic_path

    with atomic_path(path) as tmp:
        wal = Path(str(tmp) + ".wal")
        con = _connect(tmp, False, {"storage_compatibility_version": STORAGE_COMPATIBILITY})
        try:
            sql = SCHEMA_FILE.read_text()
            con.execute(sql)
            con.execute("INSERT INTO schema_meta (version, note) VALUES (?, 'schema.sql')",
                        [base_version(sql)])
            migrate(con, tmp, base_version(sql))
            con.execute("CHECKPOINT")
        finally:
            con.close()
            wal.unlink(missing_ok=True)


def migrate(con: DuckDBPyConnection, path: Path, current: int,
            directory: Path = MIGRATIONS_DIR) -> int:
    """Apply migrations N > current in order, each in its own transaction; returns the
    new version. The caller holds the write lock."""
    found = migrations(directory)
    target = max([base_version(), *(n for n, _ in found)])
    if current > target:
        raise StoreError(f"store schema version {current} is newer than this engine "
                         f"({target})", path=path, hint="upgrade logg")
    for n, mig in found:
        if n <= current:
            continue
        try:
            with transaction(con):
                con.execute(mig.read_text())
                con.execute("INSERT INTO schema_meta (version, note) VALUES (?, ?)",
                            [n, mig.name])
        except Exception as exc:
            raise StoreError(f"migration {mig.name} failed: {exc}", path=path) from exc
        current = n
    return current


def open_rw(ws: Path, *, timeout_s: float = DEFAULT_TIMEOUT_S) -> DuckDBPyConnection:
    """Read-write connection to an existing-or-new store, schema current. Call only while
    holding `store_lock(ws)`."""
    path = store_path(ws)
    ws.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        create_store(path)
    check_file_identity(path)
    ro = retry_on_lock(lambda: _connect(path, True), what="open the store", path=path,
                       timeout_s=timeout_s)
    try:
        version = read_version(ro, path)  # a foreign DuckDB file stops here, untouched
    finally:
        ro.close()
    con = retry_on_lock(lambda: _connect(path, False), what="open the store read-write",
                        path=path, timeout_s=timeout_s)
    try:
        if version < schema_version():
            migrate(con, path, version)
    except BaseException:
        con.close()
        raise
    return con


@contextmanager
def store_lock(ws: Path, *, timeout_s: float = DEFAULT_TIMEOUT_S) -> Iterator[None]:
    """The writers' file lock; StoreError after `timeout_s`."""
    from filelock import FileLock, Timeout

    ws.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(lock_path(ws)))
    try:
        lock.acquire(timeout=timeout_s)
    except Timeout as exc:
        raise StoreError(f"another logg process has been writing the store for more than "
                         f"{timeout_s:.0f} s", path=lock_path(ws),
                         hint="wait for it, or remove the lock file if no logg process "
                         "is running") from exc
    try:
        yield
    finally:
        lock.release()
