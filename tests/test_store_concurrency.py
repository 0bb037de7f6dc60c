"""The store under real concurrent processes: simultaneous writers, a writer blocked by
another process holding the DuckDB file (read-write or read-only), lock timeouts."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from _runfolders import make_run_folder
from engine.errors import StoreError
from engine.paths import store_path
from engine.store.ingest import ingest_all, ingest_run
from engine.store.connect import connect_ro

INGEST = """
import sys, time
from engine.store.ingest import ingest_run
start = float(sys.argv[3])
while time.time() < start:
    time.sleep(0.001)
print(ingest_run(sys.argv[1], sys.argv[2]), flush=True)
"""

HOLD = """
import sys, time, duckdb
con = duckdb.connect(sys.argv[1], read_only=sys.argv[2] == "ro")
con.execute("SELECT count(*) FROM runs").fetchall()
print("ready", flush=True)
time.sleep(float(sys.argv[3]))
con.close()
"""


def _counts(ws) -> dict[str, int]:
    with connect_ro(ws) as con:
        return {t: con.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
                for t in ("runs", "predictions", "bin_metrics", "run_metrics")}


def _holder(ws, mode: str, seconds: float) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(store_path(ws)), mode,
                             str(seconds)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "ready"
    return proc


def test_two_processes_ingesting_at_the_same_moment_both_land(_isolated_workspace):
    ws = _isolated_workspace
    a = make_run_folder(ws, "a", model="ridge")
    b = make_run_folder(ws, "b", model="lgbm")
    start = time.time() + 1.5  # both interpreters are up by then
    procs = [subprocess.Popen([sys.executable, "-c", INGEST, str(ws), str(d), str(start)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for d in (a, b)]
    outs = [p.communicate(timeout=60) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    assert [o[0].strip() for o in outs] == ["True", "True"]
    assert _counts(ws) == {"runs": 2, "predictions": 600, "bin_metrics": 58,
                           "run_metrics": _counts(ws)["run_metrics"]}
    with connect_ro(ws) as con:
        assert sorted(r[0] for r in con.execute("SELECT run_id FROM runs").fetchall()) == \
            ["a", "b"]


@pytest.mark.parametrize("mode", ["rw", "ro"])
def test_ingest_waits_for_another_process_holding_the_file(_isolated_workspace, mode):
    ws = _isolated_workspace
    ingest_run(ws, make_run_folder(ws, "first"))
    before = _counts(ws)
    second = make_run_folder(ws, "second", model="lgbm")
    holder = _holder(ws, mode, 1.5)
    t0 = time.monotonic()
    try:
        assert ingest_run(ws, second) is True
        waited = time.monotonic() - t0
    finally:
        holder.wait(timeout=30)
    assert holder.returncode == 0
    assert waited > 0.8  # it really was blocked, retried, then got through
    after = _counts(ws)
    assert after["runs"] == 2 and after["predictions"] == 2 * before["predictions"]
    assert after["bin_metrics"] == 2 * before["bin_metrics"]


def test_lock_held_too_long_is_a_clear_store_error(_isolated_workspace):
    ws = _isolated_workspace
    ingest_all(ws)
    x = make_run_folder(ws, "x")
    holder = _holder(ws, "rw", 3.0)
    try:
        with pytest.raises(StoreError, match="another process holds the store"):
            ingest_run(ws, x, timeout_s=0.5)
    finally:
        holder.wait(timeout=30)
    assert ingest_run(ws, ws / "runs" / "x") is True  # nothing was half-written
    assert _counts(ws)["runs"] == 1
