"""Ingest throughput: `ingest_run` of a run folder with 1M prediction rows (file lock,
identity check, read-only schema probe, read-write open, one delete-then-insert
transaction, Arrow bulk insert) against a plain DuckDB `INSERT INTO t SELECT * FROM df` of
the same rows into a fresh file (the floor), side by side in the same process.

Prints the ratio and writes bench/results/ingest.json."""

from __future__ import annotations

import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from _runfolders import make_run_folder  # noqa: E402
from engine.store.ingest import ingest_run  # noqa: E402
from engine.store.reader import StoreReader  # noqa: E402

N, REPEATS = 1_000_000, 3


def big_predictions(n: int) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    y = rng.choice(np.arange(1.0, 5.01, 0.5), n)
    return pd.DataFrame({
        "idx": np.arange(n, dtype=np.int64), "y_true": y, "y_pred": y + rng.normal(0, .6, n),
        "snr": rng.uniform(2.6, 27, n), "snr_median": rng.uniform(2.6, 27, n),
        "snr_l2": rng.uniform(.8, 8.8, n), "mag": rng.uniform(20.5, 22.5, n),
        "T_eff": rng.choice(np.arange(3500.0, 6501, 250), n),
        "M_H": rng.choice(np.arange(-2.5, .76, .25), n), "a_M": np.zeros(n), "C_M": np.zeros(n),
        "crlb_log_g": rng.uniform(.02, 1.5, n)})


def baseline(df: pd.DataFrame, path: Path) -> float:
    """Plain DuckDB: fresh file, same table shape, one INSERT … SELECT * FROM df."""
    import duckdb

    path.unlink(missing_ok=True)
    con = duckdb.connect(str(path))
    con.execute("CREATE TABLE predictions (run_id VARCHAR, idx BIGINT, y_true DOUBLE, "
                "y_pred DOUBLE, snr DOUBLE, snr_l2 DOUBLE, mag DOUBLE, T_eff DOUBLE, "
                "M_H DOUBLE, crlb_log_g DOUBLE)")
    frame = df[["idx", "y_true", "y_pred", "snr", "snr_l2", "mag", "T_eff", "M_H",
                "crlb_log_g"]].copy()
    frame.insert(0, "run_id", "big")
    t0 = time.perf_counter()
    con.execute("INSERT INTO predictions SELECT * FROM frame")
    con.close()  # include the flush to disk, as ingest's COMMIT + close does
    return time.perf_counter() - t0


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        ws = Path(tmp) / "ws"
        run_dir = make_run_folder(ws, "big", n=300)  # real metrics.json etc.
        df = big_predictions(N)
        df.to_parquet(run_dir / "predictions.parquet", index=False)
        ours, base = [], []
        for _k in range(REPEATS):  # alternate, fresh store each time
            for p in ws.glob("results.duckdb*"):
                p.unlink()
            t0 = time.perf_counter()
            assert ingest_run(ws, run_dir, force=True)
            ours.append(time.perf_counter() - t0)
            base.append(baseline(df, Path(tmp) / "plain.duckdb"))
        t0 = time.perf_counter()  # re-ingest over an existing copy: delete + insert
        ingest_run(ws, run_dir, force=True)
        reingest = time.perf_counter() - t0
        with StoreReader(ws) as r:
            con = r.con
            stored = con.execute("SELECT count(*), sum(y_pred) FROM predictions").fetchone()
        assert stored[0] == N and abs(stored[1] - df["y_pred"].sum()) < 1e-6 * N
    o, b = statistics.median(ours), statistics.median(base)
    result = {
        "rows": N, "repeats": REPEATS, "machine": platform.machine(),
        "load_avg_1m_at_end": round(os.getloadavg()[0], 2),  # shared machine: context
        "python": platform.python_version(),
        "ingest_run_s": [round(x, 4) for x in ours],
        "baseline_insert_select_s": [round(x, 4) for x in base],
        "reingest_over_existing_s": round(reingest, 4),
        "ingest_rows_per_s": round(N / o), "baseline_rows_per_s": round(N / b),
        "ratio_ingest_over_baseline": round(o / b, 3),
        "note": "ingest_run is end to end (lock, checks, parquet read, transaction, runs/"
                "metrics/bins rows, commit, close); baseline inserts an in-memory DataFrame "
                "into a fresh file and closes it",
    }
    print(f"ingest_run  {o:.3f} s  {N / o:,.0f} rows/s   (fresh store, end to end)")
    print(f"baseline    {b:.3f} s  {N / b:,.0f} rows/s   (INSERT … SELECT * FROM df)")
    print(f"re-ingest   {reingest:.3f} s   (delete + insert over an existing copy)")
    print(f"ratio ingest/baseline = {o / b:.2f}x")
    out = Path(__file__).resolve().parent / "results" / "ingest.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
