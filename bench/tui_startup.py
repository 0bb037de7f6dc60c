"""logg-tui start-up: time to the first screen (the Runs table filled) on a store with
10k runs and 10M prediction rows, against a bare `duckdb` connect + the same first query,
each in a fresh Python process, measured side by side in this run.

The store is built in seconds with SQL range()/random() inserts into the real schema
(engine/store/schema.sql via engine.store.connect.create_store). Writes
bench/results/tui_startup.json.

    python bench/tui_startup.py [--runs 10000] [--preds 10000000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

MODELS = "['ridge', 'lgbm', 'vit']"
SIZES = "[10000, 50000, 100000, 200000, 500000, 1000000]"


def build_store(ws: Path, n_runs: int, n_preds: int) -> float:
    """Fill a fresh store; returns the seconds it took."""
    import duckdb

    from engine.paths import store_path
    from engine.store.connect import create_store

    t0 = time.perf_counter()
    ws.mkdir(parents=True, exist_ok=True)
    path = store_path(ws)
    create_store(path)
    con = duckdb.connect(str(path))
    con.execute(f"""
        INSERT INTO runs (run_id, model, preset, config_hash, dataset_fingerprint,
            dataset_name, train_size, noise_level, seed, test_split, status, created,
            started, ended, duration_s, command)
        SELECT 'run-' || lpad(i::VARCHAR, 6, '0'), {MODELS}[1 + i % 3], 'default',
            'cfg' || (i % 50), 'fp0', 'default', {SIZES}[1 + (i // 3) % 6], 1.0, i % 5,
            'test', CASE WHEN i % 97 = 0 THEN 'failed' ELSE 'finished' END,
            TIMESTAMP '2026-01-01' + INTERVAL (i) MINUTE,
            TIMESTAMP '2026-01-01' + INTERVAL (i) MINUTE,
            TIMESTAMP '2026-01-01' + INTERVAL (i + 5) MINUTE, 300 + random() * 60,
            'logg-engine run ridge --size 10k'
        FROM range({n_runs}) t(i)""")
    con.execute("""
        INSERT INTO run_metrics (run_id, dataset_fingerprint, split, noise_level,
            realisation, subset, metric, value, lo, hi)
        SELECT run_id, 'fp0', 'test', 1.0, 'stored', 'all', m,
            CASE m WHEN 'r2' THEN 0.4 + random() * 0.3 WHEN 'mae' THEN 0.35 + random() * 0.3
                   WHEN 'n' THEN 10000 ELSE random() END,
            CASE WHEN m IN ('r2', 'mae') THEN 0.3 END, CASE WHEN m IN ('r2', 'mae') THEN 0.8 END
        FROM runs, (SELECT unnest(['n', 'r2', 'mae', 'rmse', 'bias', 'p90', 'slope',
                                    'r2_max_pop', 'eta']) AS m)""")
    con.execute("""
        INSERT INTO bin_metrics (run_id, scheme, bin, label, lo, hi, n, r2, mae, r2_max)
        SELECT run_id, 'snr', b, 'bin' || b, b * 3.0, b * 3.0 + 3, 1000, random(), random(),
               0.9
        FROM runs, range(8) t(b)""")
    per_run = max(1, n_preds // n_runs)
    con.execute(f"""
        INSERT INTO predictions (run_id, idx, y_true, y_pred, snr)
        SELECT 'run-' || lpad((i // {per_run})::VARCHAR, 6, '0'), i % {per_run},
               1 + random() * 4, 1 + random() * 4, 2 + random() * 30
        FROM range({per_run * n_runs}) t(i)""")
    con.execute("CHECKPOINT")
    con.close()
    return time.perf_counter() - t0


TUI_CHILD = """
import asyncio, sys, time
from pathlib import Path
from logg_tui.app import LoggApp

async def main():
    app = LoggApp(Path(sys.argv[1]), readonly=True)
    async with app.run_test(size=(160, 48)) as pilot:
        while True:
            t = app.screen.query("#runs")
            if t and t.first().row_count > 0:
                break
            await asyncio.sleep(0.005)
        print(time.time(), t.first().row_count, flush=True)
        app.exit()

asyncio.run(main())
"""

BARE_CHILD = """
import sys, time
import duckdb
from logg_tui.queries import _RUNS_SQL  # the string only: logg_tui.queries imports no pandas
con = duckdb.connect(sys.argv[1] + '/results.duckdb', read_only=True)
rows = con.execute('SELECT *, count(*) OVER () AS _total FROM (' + _RUNS_SQL + ') '
                   'ORDER BY started DESC NULLS LAST, run_id LIMIT 1000').fetchall()
print(time.time(), len(rows), flush=True)
"""


def time_child(code: str, ws: Path) -> tuple[float, int, float]:
    """(seconds from spawning a fresh interpreter to the moment it reports ready, rows,
    CPU seconds the child used in all — a figure less sensitive to a busy machine)."""
    import resource

    env = dict(os.environ, PYTHONPATH=str(ROOT))
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.time()
    out = subprocess.run([sys.executable, "-c", code, str(ws)], capture_output=True,
                         text=True, env=env, timeout=120, cwd=ROOT)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if out.returncode != 0:
        raise SystemExit(out.stderr)
    stamp, rows = out.stdout.split()[:2]
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return float(stamp) - t0, int(rows), cpu


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=10_000)
    ap.add_argument("--preds", type=int, default=10_000_000)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        ws = Path(tmp) / "ws"
        build_s = build_store(ws, args.runs, args.preds)
        print(f"store: {args.runs} runs, {args.preds:,} predictions built in {build_s:.1f} s "
              f"({(ws / 'results.duckdb').stat().st_size / 1e6:.0f} MB)")
        tui, bare, tui_cpu, bare_cpu = [], [], [], []
        for _ in range(args.repeat):  # interleaved so both see the same machine load
            s, _, c = time_child(BARE_CHILD, ws)
            bare.append(s)
            bare_cpu.append(c)
            s, rows, c = time_child(TUI_CHILD, ws)
            tui.append(s)
            tui_cpu.append(c)
    res = {
        "n_runs": args.runs, "n_predictions": args.preds, "build_store_s": round(build_s, 2),
        "tui_first_screen_s": round(statistics.median(tui), 3),
        "bare_duckdb_connect_query_s": round(statistics.median(bare), 3),
        "ratio_tui_over_bare": round(statistics.median(tui) / statistics.median(bare), 2),
        "tui_process_cpu_s": round(statistics.median(tui_cpu), 3),
        "bare_process_cpu_s": round(statistics.median(bare_cpu), 3),
        "tui_samples_s": [round(x, 3) for x in tui], "bare_samples_s": [round(x, 3) for x in bare],
        "rows_on_first_screen": rows, "python": sys.version.split()[0],
        "cpus": os.cpu_count(), "load_avg_1m_at_end": round(os.getloadavg()[0], 2),
        "note": "each figure = fresh interpreter spawn → ready (median); TUI = headless "
                "App.run_test at 160x48 until the Runs table has rows",
    }
    print(f"time to first screen: {res['tui_first_screen_s']:.3f} s  vs  bare duckdb connect "
          f"+ same query: {res['bare_duckdb_connect_query_s']:.3f} s  → ratio "
          f"{res['ratio_tui_over_bare']:.2f}  (CPU: {res['tui_process_cpu_s']:.2f} s vs "
          f"{res['bare_process_cpu_s']:.2f} s; load avg {res['load_avg_1m_at_end']})")
    out = ROOT / "bench" / "results" / "tui_startup.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(res, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
