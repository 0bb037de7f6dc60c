"""Reading one run folder (run.json, events.jsonl, metrics.json, predictions.parquet) into
plain records for the store. Pure reading: no store access, no writes.

Status, times, peak memory and metric history come from the one fold of events.jsonl
(engine.run_state, which also holds the status rules)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, UTC
from pathlib import Path
from typing import Any

from engine.errors import StoreError
from engine.run_state import RunState, fold_run_folder

FILES = ("run.json", "events.jsonl", "metrics.json", "predictions.parquet")
PRED_COLUMNS = {"idx": "int64", "y_true": "float64", "y_pred": "float64", "snr": "float64",
                "snr_l2": "float64", "mag": "float64", "T_eff": "float64", "M_H": "float64",
                "crlb_log_g": "float64", "sigma": "float64", "sigma_raw": "float64",
                "lo68": "float64", "hi68": "float64", "lo95": "float64", "hi95": "float64"}


@dataclass
class RunRecord:
    """Everything the store keeps about one run folder."""

    run_dir: Path
    run: dict[str, Any]                     # one `runs` row
    params: list[tuple]                     # run_params rows (key, type, num, text)
    history: list[tuple]                    # metric_history rows (step, split, name, value, t)
    metrics: dict[str, Any] | None          # metrics.json content
    dataset: dict[str, Any] | None          # datasets row
    predictions_path: Path | None
    extra: dict[str, Any] = field(default_factory=dict)


def state_signature(run_dir: Path) -> str:
    """(mtime_ns, size) of the run files: the cheap "did anything change" check."""
    sig = []
    for name in FILES:
        try:
            st = (run_dir / name).stat()
            sig.append([name, st.st_mtime_ns, st.st_size])
        except FileNotFoundError:
            sig.append([name, None, None])
    return json.dumps(sig)


def read_run_folder(run_dir: Path, *, now: float | None = None) -> RunRecord:
    """Parse a run folder; StoreError naming the file when run.json is missing or bad."""
    run_dir = Path(run_dir)
    spec = _read_json(run_dir / "run.json", required=True)
    state = fold_run_folder(run_dir, run=spec, now=now)
    metrics = _read_json(run_dir / "metrics.json", required=False)
    preds = run_dir / "predictions.parquet"
    ds = spec.get("dataset") or {}
    git = spec.get("git") or {}
    row = {
        "run_id": str(spec.get("run_id") or run_dir.name),
        "model": spec.get("model"), "preset": spec.get("preset"),
        "config_hash": spec.get("config_hash"),
        "dataset_fingerprint": ds.get("fingerprint"), "dataset_name": ds.get("name"),
        "dataset_path": ds.get("path"),
        "train_size": _int(spec.get("train_size")), "noise_level": _float(spec.get("noise_level")),
        "seed": _int(spec.get("seed")), "test_split": spec.get("test_split"),
        "val_split": spec.get("val_split"), "status": state.status, "error": state.error,
        "created": _ts(spec.get("created")),
        "started": _ts(state.started if state.started is not None else spec.get("created")),
        "ended": _ts(state.ended), "duration_s": state.duration_s(),
        "last_event": _ts(state.last), "host": spec.get("host"), "pid": _int(spec.get("pid")),
        "git_sha": git.get("sha"), "git_dirty": git.get("dirty"),
        "command": _command(spec.get("command")), "peak_rss_mb": state.peak_rss_mb,
        "device": spec.get("device"), "versions": _json(spec.get("versions")),
        "spec": json.dumps(spec, default=str), "run_dir": str(run_dir.resolve()),
        "state_sig": state_signature(run_dir),
    }
    dataset = None
    if ds.get("fingerprint"):
        splits = ds.get("splits") or {}
        dataset = {"fingerprint": ds["fingerprint"], "name": ds.get("name"),
                   "path": ds.get("path"), "n_train": _int(splits.get("train")),
                   "n_val": _int(splits.get("val")), "n_test": _int(splits.get("test")),
                   "splits": json.dumps(splits),
                   "generator_version": _str(ds.get("generator_version")),
                   "preset": _str(ds.get("preset")), "seed": _int(ds.get("seed"))}
    return RunRecord(run_dir=run_dir, run=row, params=typed_params(_hyper(spec)),
                     history=_history(state), metrics=metrics, dataset=dataset,
                     predictions_path=preds if preds.exists() else None)


def typed_params(params: dict[str, Any], prefix: str = "") -> list[tuple]:
    """Flatten nested hyper-parameters to (key, value_type, num_value, text_value)."""
    rows = []
    for k, v in (params or {}).items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            rows.extend(typed_params(v, key + "."))
        elif isinstance(v, bool):
            rows.append((key, "bool", float(v), str(v).lower()))
        elif isinstance(v, int):
            rows.append((key, "int", float(v), str(v)))
        elif isinstance(v, float):
            rows.append((key, "float", v, repr(v)))
        elif v is None:
            rows.append((key, "null", None, None))
        elif isinstance(v, str):
            rows.append((key, "str", None, v))
        else:
            rows.append((key, "json", None, json.dumps(v, default=str)))
    return rows


def _hyper(spec: dict) -> dict:
    for key in ("params", "hyper_parameters", "hyperparameters", "hparams"):
        if isinstance(spec.get(key), dict):
            return spec[key]
    inner = spec.get("spec")
    return inner.get("params", {}) if isinstance(inner, dict) and \
        isinstance(inner.get("params"), dict) else {}


def _history(state: RunState) -> list[tuple]:
    """metric_history rows (step, split, name, value, t) as the fold collected them."""
    return list(state.history)


def _read_json(path: Path, *, required: bool) -> dict | None:
    if not path.exists():
        if required:
            raise StoreError("not a run folder: run.json is missing", path=path.parent,
                             hint="pass a folder under <workspace>/runs/")
        return None
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise StoreError(f"unreadable JSON: {exc}", path=path,
                         hint="the run that wrote it probably crashed; delete the folder "
                         "or rerun") from exc
    if not isinstance(data, dict):
        raise StoreError("expected a JSON object", path=path)
    return data


def _int(x):
    try:
        return None if x is None else int(x)
    except (TypeError, ValueError):
        return None


def _float(x):
    try:
        return None if x is None else float(x)
    except (TypeError, ValueError):
        return None


def _ts(x) -> datetime | None:
    """Unix seconds or ISO text → naive UTC datetime."""
    if x is None:
        return None
    if isinstance(x, (int, float)):
        return datetime.fromtimestamp(float(x), tz=UTC).replace(tzinfo=None)
    try:
        d = datetime.fromisoformat(str(x))
    except ValueError:
        return None
    return d.astimezone(UTC).replace(tzinfo=None) if d.tzinfo else d


def _json(x):
    return None if x is None else json.dumps(x, default=str)


def _command(x):
    if isinstance(x, (list, tuple)):
        import shlex

        return shlex.join(str(a) for a in x)
    return None if x is None else str(x)


def _str(x) -> str | None:
    return None if x is None else str(x)
