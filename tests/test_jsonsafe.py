"""engine.jsonsafe: numpy / pandas values → plain Python, one rule set for every JSON file
and for display."""

from __future__ import annotations

import datetime as dt
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd

from engine.jsonsafe import json_safe, plain


def test_json_safe_oracle():
    data = {
        "f32": np.float32(1.5), "i64": np.int64(3), "b": np.bool_(True), "s": np.str_("x"),
        "floats": [np.nan, np.inf, -np.inf, 2.0, np.float64("nan")],
        "arr": np.array([[1, 2], [3, np.nan]]), "zero_d": np.array(2.5),
        "tup": (1, (2, 3)), "path": Path("/a/b"),
        "ts": pd.Timestamp("2024-01-02 03:04:05"), "nat": pd.NaT, "na": pd.NA,
        "date": dt.date(2024, 1, 2), "series": pd.Series([1.0, np.nan]),
        7: "int key", "none": None, "text": "ok",
    }
    want = {
        "f32": 1.5, "i64": 3, "b": True, "s": "x",
        "floats": [None, None, None, 2.0, None],
        "arr": [[1.0, 2.0], [3.0, None]], "zero_d": 2.5,
        "tup": [1, [2, 3]], "path": "/a/b",
        "ts": "2024-01-02T03:04:05", "nat": None, "na": None,
        "date": "2024-01-02", "series": [1.0, None],
        "7": "int key", "none": None, "text": "ok",
    }
    got = json_safe(data)
    assert got == want
    assert type(got["i64"]) is int and type(got["b"]) is bool and type(got["f32"]) is float
    assert json.loads(json.dumps(got, allow_nan=False)) == want


def test_plain_scalars():
    assert plain(np.float64("nan")) is None and plain(pd.NaT) is None and plain(None) is None
    assert plain(pd.NA) is None and plain(math.nan) is None
    assert plain(np.float64(np.inf)) == math.inf         # display keeps ±inf
    assert type(plain(np.int32(4))) is int and plain(np.int32(4)) == 4
    assert plain(np.bool_(False)) is False
    ts = pd.Timestamp("2024-01-01")
    assert plain(ts) is ts                               # datetimes stay datetimes
    assert plain("x") == "x" and plain(3) == 3
