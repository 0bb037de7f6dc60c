"""The analysis folder: `<ws>/analyses/<analysis_id>/analysis.json` + `rows.parquet`.

An analysis result is a list of records (dicts). Each record becomes long rows
(key, metric, value, lo, hi, extra): every numeric field is one metric row, a field
`<name>_ci` = (lo, hi) gives that metric's interval, and every non-numeric field (section,
label, strategy, ...) goes, with the integer fields, into `extra` (JSON) so the store's
views can pivot them back. The folder is written atomically (engine.atomic.atomic_dir), so a
reader never sees half of it; re-writing the same analysis_id replaces it."""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field
from datetime import datetime, UTC
from pathlib import Path
from typing import Any

import numpy as np

from engine.atomic import atomic_dir
from engine.jsonsafe import json_safe

ROW_COLUMNS = ("row_idx", "key", "metric", "value", "lo", "hi", "extra")
DESCRIPTIVE = ("section", "bin", "label", "subset", "strategy", "scheme", "run_id",
               "model", "expert", "gate", "routing", "true_bin", "pred_bin", "note")


@dataclass
class AnalysisResult:
    """kind: moe_oracle | moe_gate | deleakage | ceiling; params: what was asked (JSON);
    records: the result rows; summary: a few headline numbers for analysis.json."""

    kind: str
    params: dict[str, Any]
    records: list[dict[str, Any]]
    run_id: str | None = None
    summary: dict[str, Any] = field(default_factory=dict)
    created: str = field(default_factory=lambda: datetime.now(UTC)
                         .replace(tzinfo=None).isoformat(timespec="seconds"))

    @property
    def analysis_id(self) -> str:
        """kind + hash of the parameters: rerunning the same analysis replaces it."""
        blob = json.dumps(json_safe(self.params), sort_keys=True, default=str)
        return f"{self.kind}-{hashlib.sha256(blob.encode()).hexdigest()[:12]}"


def record_key(rec: dict[str, Any]) -> str:
    """`key` if given, else section + the fields that identify the row."""
    if rec.get("key"):
        return str(rec["key"])
    parts = [str(rec.get("section", "row"))]
    for f in ("run_id", "scheme", "subset", "strategy", "bin", "true_bin", "pred_bin"):
        if rec.get(f) is not None:
            parts.append(f"{f}={rec[f]}")
    return ":".join(parts)


def long_rows(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Records → long rows (ROW_COLUMNS)."""
    rows: list[dict[str, Any]] = []
    for rec in records:
        key = record_key(rec)
        extra = {k: json_safe(v) for k, v in rec.items()
                 if k in DESCRIPTIVE or (not _is_number(v) and not k.endswith("_ci")
                                         and k != "key")}
        extra_json = json.dumps(extra, default=str)
        for name, value in rec.items():
            if name in DESCRIPTIVE or name == "key" or name.endswith("_ci") \
                    or not _is_number(value):
                continue
            lo, hi = rec.get(f"{name}_ci") or (None, None)
            rows.append({"row_idx": len(rows), "key": key, "metric": name,
                         "value": _num(value), "lo": _num(lo), "hi": _num(hi),
                         "extra": extra_json})
    return rows


def write_analysis(workspace: Path, result: AnalysisResult) -> Path:
    """Write the folder atomically; returns its path."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    final = Path(workspace) / "analyses" / result.analysis_id
    doc = {"analysis_id": result.analysis_id, "kind": result.kind, "run_id": result.run_id,
           "params": result.params, "summary": result.summary, "created": result.created}
    rows = long_rows(result.records)
    types = {"row_idx": pa.int32(), "key": pa.string(), "metric": pa.string(),
             "value": pa.float64(), "lo": pa.float64(), "hi": pa.float64(),
             "extra": pa.string()}
    table = pa.table({c: pa.array([r[c] for r in rows], type=types[c]) for c in ROW_COLUMNS})
    with atomic_dir(final) as tmp:
        (tmp / "analysis.json").write_text(json.dumps(json_safe(doc), indent=2, default=str)
                                           + "\n")
        pq.write_table(table, tmp / "rows.parquet")
    return final


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float, np.integer, np.floating, bool, np.bool_)) \
        and v is not None


def _num(v: Any) -> float | None:
    if v is None:
        return None
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None
