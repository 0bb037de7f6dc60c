"""Per-bin query latency on a store with 10M prediction rows (10 runs × 1M): computing
per-SNR-bin R² from `predictions` on the fly (what a store without precomputed bins would
do) against reading the precomputed `bin_metrics` through the `r2_vs_snr` view.

The store is a real logg store (schema.sql); the predictions are generated inside DuckDB
with range()/random() so building takes seconds. bin_metrics for the SNR scheme are
computed once by the same SQL and checked against `evaluate()` on one run (1e-9), so both
sides answer the same question. Prints ratios, writes bench/results/query.json."""

from __future__ import annotations

import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from engine.eval.bins import SNR  # noqa: E402
from engine.eval.protocol import evaluate  # noqa: E402
from engine.store.connect import open_rw, store_lock  # noqa: E402
from engine.store.reader import StoreReader  # noqa: E402

RUNS, ROWS, REPEATS = 10, 1_000_000, 5
_E = SNR.edges
# [lo, hi) with the last bin closed: the protocol's convention (engine.eval.bins)
BIN_CASE = "CASE " + " ".join(
    f"WHEN snr >= {lo} AND snr {'<=' if k == len(_E) - 2 else '<'} {hi} THEN {k}"
    for k, (lo, hi) in enumerate(zip(_E[:-1], _E[1:]))) + " END"
ON_THE_FLY = f"""
SELECT run_id, bin, count(*) AS n,
       1 - sum((y_pred - y_true) ^ 2) / (sum(y_true ^ 2) - sum(y_true) ^ 2 / count(*)) AS r2,
       avg(abs(y_pred - y_true)) AS mae
FROM (SELECT run_id, y_true, y_pred, {BIN_CASE} AS bin FROM predictions {{where}})
WHERE bin IS NOT NULL GROUP BY run_id, bin ORDER BY run_id, bin"""
PRECOMPUTED = "SELECT run_id, bin, n, r2, mae FROM r2_vs_snr {where} ORDER BY run_id, bin"


def build(ws: Path) -> float:
    t0 = time.perf_counter()
    with store_lock(ws):
        con = open_rw(ws)
        for r in range(RUNS):
            con.execute(f"""
                INSERT INTO predictions
                SELECT 'run{r:02d}', i, yt, yt + (random() - 0.5) * {0.8 + 0.1 * r},
                       2.5 + random() * 25.5, 0.8 + random() * 8, 20.5 + random() * 2,
                       3500 + 250 * floor(random() * 13), -2.5 + 0.25 * floor(random() * 14),
                       0.02 + random() * 1.5
                FROM (SELECT i, 1.0 + 0.5 * floor(random() * 9) AS yt FROM range({ROWS}) t(i))""")
            con.execute("INSERT INTO runs (run_id, model, status, dataset_name, train_size, "
                        "noise_level) VALUES (?, 'synthetic', 'finished', 'bench', ?, 1.0)",
                        [f"run{r:02d}", 10_000 * (r + 1)])
        con.execute(f"""INSERT INTO bin_metrics (run_id, scheme, bin, label, lo, hi, n, r2, mae)
            SELECT q.run_id, 'snr', q.bin, NULL, NULL, NULL, q.n, q.r2, q.mae
            FROM ({ON_THE_FLY.format(where='')}) q""")
        con.execute("UPDATE bin_metrics SET lo = e.lo, hi = e.hi, label = e.label FROM "
                    "(SELECT unnest(?) AS bin, unnest(?) AS lo, unnest(?) AS hi, unnest(?) AS "
                    "label) e WHERE bin_metrics.bin = e.bin",
                    [list(range(8)), list(_E[:-1]), list(_E[1:]), list(SNR.labels)])
        con.execute("CHECKPOINT")
        con.close()
    return time.perf_counter() - t0


def check_against_evaluate(ws: Path) -> float:
    """Max |R²(SQL bin) − R²(evaluate() bin)| on run00."""
    with StoreReader(ws) as r:
        con = r.con
        df = con.execute("SELECT * FROM predictions WHERE run_id = 'run00'").df()
        stored = dict(con.execute("SELECT bin, r2 FROM bin_metrics WHERE run_id = 'run00'")
                      .fetchall())
    ev = evaluate(df["y_true"], df["y_pred"], df, eval_key={}, n_boot=0)
    return max(abs(b["r2"] - stored[b["bin"]]) for b in ev.bins if b["scheme"] == "snr")


def timed(ws: Path, sqls: list[str], params: list) -> list[list[float]]:
    """Seconds per query, the queries alternating within each repeat (same conditions)."""
    out: list[list[float]] = [[] for _ in sqls]
    for _ in range(REPEATS):
        for k, sql in enumerate(sqls):
            with StoreReader(ws) as r:  # a fresh short-lived reader, as CLI/TUI use
                con = r.con
                t0 = time.perf_counter()
                con.execute(sql, params).fetchall()
                out[k].append(time.perf_counter() - t0)
    return out


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        ws = Path(tmp) / "ws"
        build_s = build(ws)
        err = check_against_evaluate(ws)
        assert err < 1e-9, err
        cases = {
            "one_run": ("WHERE run_id = ?", ["run03"]),
            "all_runs": ("", []),
        }
        res = {}
        for name, (where, params) in cases.items():
            fly, pre = timed(ws, [ON_THE_FLY.format(where=where),
                                  PRECOMPUTED.format(where=where)], params)
            f, p = statistics.median(fly), statistics.median(pre)
            res[name] = {"on_the_fly_s": [round(x, 5) for x in fly],
                         "precomputed_s": [round(x, 5) for x in pre],
                         "median_on_the_fly_ms": round(1e3 * f, 2),
                         "median_precomputed_ms": round(1e3 * p, 2),
                         "speedup_precomputed": round(f / p, 1)}
            print(f"{name:9s} on the fly {1e3 * f:8.1f} ms   precomputed {1e3 * p:6.2f} ms   "
                  f"ratio {f / p:6.1f}x")
        size_mb = (ws / "results.duckdb").stat().st_size / 2**20
    result = {"prediction_rows": RUNS * ROWS, "runs": RUNS, "repeats": REPEATS,
        "load_avg_1m_at_end": round(os.getloadavg()[0], 2),  # shared machine: context
              "build_s": round(build_s, 2), "store_mb": round(size_mb, 1),
              "max_abs_r2_diff_vs_evaluate": err, **res}
    print(f"built {RUNS * ROWS:,} rows in {build_s:.1f} s ({size_mb:.0f} MB); "
          f"SQL bin R² vs evaluate(): max |Δ| = {err:.1e}")
    out = Path(__file__).resolve().parent / "results" / "query.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
