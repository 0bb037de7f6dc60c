"""Plain Python values out of numpy / pandas ones, for JSON files, JSON output and display.

Why one place: run.json, metrics.json, events.jsonl, analysis.json, `--json` output and
the TUI all receive numpy scalars, arrays, NaN and pandas' NaT/NA; each used to convert
them with its own copy, and the copies disagreed (one turned NaN into null, one kept it,
one forgot numpy booleans). The rules, once:

- `plain(v)`: one scalar → Python (numpy scalar → int/float/bool/str; NaN, NaT, NA →
  None; datetimes stay datetimes; ±inf stays). For display and DataFrame cells.
- `json_safe(obj)`: a whole structure → what `json.dumps(..., allow_nan=False)` accepts:
  dict keys → str, tuples/sets/arrays/Series → lists, NaN/±inf → None, datetimes → ISO
  8601 text, paths → str. Anything else is returned as is (callers may pass `default=str`).
"""

from __future__ import annotations

import datetime as dt
import math
from pathlib import PurePath
from typing import Any

# Recognised by type name, so neither numpy nor pandas is imported here (the TUI's
# start-up path uses `plain`).
_MISSING_TYPES = ("NaTType", "NAType")  # pandas' NaT and NA


def plain(v: Any) -> Any:
    """One scalar as plain Python; missing values (None, NaN, NaT, NA) → None."""
    if v is None or type(v).__name__ in _MISSING_TYPES:
        return None
    if _numpy_scalar(v):
        try:
            v = v.item()
        except (ValueError, OverflowError):  # e.g. a datetime64 out of datetime's range
            return v
    if isinstance(v, float) and math.isnan(v):
        return None
    return v


def json_safe(obj: Any) -> Any:
    """A copy of `obj` that strict JSON can hold (rules in the module docstring)."""
    if isinstance(obj, dict):
        return {str(k): json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple, set, frozenset)):
        return [json_safe(v) for v in obj]
    if hasattr(obj, "tolist") and getattr(obj, "ndim", 0) > 0:
        return json_safe(obj.tolist())  # ndarray, pandas Series / Index
    obj = plain(obj)
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, (dt.date, dt.time)):  # datetime and pandas Timestamp included
        return obj.isoformat()
    if isinstance(obj, PurePath):
        return str(obj)
    return obj


def _numpy_scalar(v: Any) -> bool:
    """A numpy scalar or 0-d array (what `.item()` turns into one Python value)."""
    return type(v).__module__ == "numpy" and getattr(v, "ndim", None) == 0
