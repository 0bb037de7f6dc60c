"""Real run folders in the documented format (docs/dev-contracts.md "Run folder") for the
store and CLI tests: run.json, events.jsonl, predictions.parquet, metrics.json written by
the real `evaluate()`. Synthetic but shaped like the research's test split."""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path

import numpy as np
import pandas as pd

from engine.eval.protocol import evaluate

FINGERPRINT = "fp-test-0001"


def synthetic_test_split(n: int, seed: int = 0) -> pd.DataFrame:
    """Labels on the grid nodes, SNR/mag/Teff/[M/H] over the research ranges, CRLBs."""
    rng = np.random.default_rng(seed)
    return pd.DataFrame({
        "idx": np.arange(n, dtype=np.int64),
        "log_g": rng.choice(np.arange(1.0, 5.01, 0.5), n),
        "snr": rng.uniform(2.6, 27.0, n), "snr_median": rng.uniform(2.6, 27.0, n),
        "snr_l2": rng.uniform(0.8, 8.8, n), "mag": rng.uniform(20.5, 22.5, n),
        "T_eff": rng.choice(np.arange(3500.0, 6501.0, 250.0), n),
        "M_H": rng.choice(np.arange(-2.5, 0.76, 0.25), n),
        "a_M": rng.choice([-0.25, 0.0, 0.25, 0.5], n), "C_M": np.zeros(n),
        "crlb_log_g": rng.uniform(0.02, 1.5, n),
    })


def make_run_folder(ws: Path, run_id: str, *, model: str = "ridge", train_size: int = 10_000,
                    noise: float = 0.6, n: int = 300, seed: int = 0, status: str | None =
                    "finished", pid: int | None = None, params: dict | None = None,
                    dataset: str = "default", last_event_age: float = 0.0,
                    ended: float | None = None, n_boot: int = 50,
                    queued: bool = False, fingerprint: str = FINGERPRINT,
                    generator_version: str | None = None) -> Path:
    """Write one run folder. status=None: no end event (a running or lost run); pid
    defaults to a pid that cannot exist. `noise` is the prediction scatter in dex."""
    d = Path(ws) / "runs" / run_id
    d.mkdir(parents=True, exist_ok=True)
    now = time.time() if ended is None else ended
    t0 = now - 30.0
    spec = {
        "run_id": run_id, "model": model, "preset": "default",
        "params": params if params is not None else {"alpha": 5000.0, "fit_intercept": True},
        "config_hash": f"cfg-{model}-{json.dumps(params, sort_keys=True)}",
        "dataset": {"name": dataset, "path": f"/data/{dataset}", "fingerprint": fingerprint,
                    "splits": {"train": 200_000, "val": 1000, "test": n},
                    **({"generator_version": generator_version, "preset": dataset, "seed": 0}
                       if generator_version else {})},
        "train_size": train_size, "noise_level": 1.0, "seed": seed, "test_split": "test",
        "val_split": "val", "git": {"sha": "abc123", "dirty": False},
        "versions": {"python": "3.11"}, "host": socket.gethostname(),
        "pid": 999_999_999 if pid is None else pid,
        "command": ["logg-engine", "run", model, "--size", str(train_size)],
        "created": t0,
    }
    if queued:  # the folder exists, the run's process has not recorded its pid yet
        spec.update(pid=None, status="queued")
    (d / "run.json").write_text(json.dumps(spec))
    events = [{"t": t0, "event": "start", "total": 3, "unit": "epochs", "what": model}]
    events += [{"t": t0 + i, "event": "metric", "step": i, "name": "val_r2", "value": 0.1 * i,
                "split": "val"} for i in range(3)]
    events.append({"t": now - last_event_age, "event": "heartbeat", "rss_mb": 123.0})
    if status is not None:
        events.append({"t": now, "event": "end", "status": status,
                       "error": None if status == "finished" else "boom"})
    (d / "events.jsonl").write_text("".join(json.dumps(e) + "\n" for e in events))
    if status == "finished":
        split = synthetic_test_split(n, seed=0)
        rng = np.random.default_rng(seed + train_size)
        y = split["log_g"].to_numpy()
        pred = y + rng.normal(0, noise, n)
        preds = split.drop(columns=["log_g"]).assign(y_true=y, y_pred=pred)
        preds.to_parquet(d / "predictions.parquet", index=False)
        ev = evaluate(y, pred, split, n_boot=n_boot, seed=0,
                      eval_key={"dataset_fingerprint": fingerprint, "split": "test",
                                "noise_level": 1.0, "realisation": "stored"})
        (d / "metrics.json").write_text(json.dumps(ev.to_json()))
    return d
