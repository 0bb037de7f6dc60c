"""engine.atomic: a write is whole or absent — an exception mid-write leaves the old file
byte for byte and no temporary file; success replaces it; folders swap the same way."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from engine.atomic import (atomic_dir, atomic_path, is_temp_name, save_npy, write_json,
                           write_parquet, write_text)


class Boom(Exception):
    pass


def test_failed_write_keeps_old_file_and_leaves_no_temp(tmp_path):
    path = tmp_path / "run.json"
    path.write_text("old\n")
    with pytest.raises(Boom):
        with atomic_path(path) as tmp:
            tmp.write_text("half of the new cont")
            raise Boom
    assert path.read_text() == "old\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run.json"]


def test_failed_first_write_creates_nothing(tmp_path):
    with pytest.raises(Boom), atomic_path(tmp_path / "sub" / "a.txt") as tmp:
        tmp.write_text("x")
        raise Boom
    assert list((tmp_path / "sub").iterdir()) == []


def test_success_replaces_and_temp_name_is_hidden_beside(tmp_path):
    path = tmp_path / "model.txt"
    path.write_text("old")
    with atomic_path(path) as tmp:
        assert tmp.parent == tmp_path and is_temp_name(tmp.name) and not tmp.exists()
        tmp.write_text("new")
        assert path.read_text() == "old"       # not visible until the block ends
    assert path.read_text() == "new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.txt"]


def test_block_that_writes_nothing_is_an_error_and_keeps_old(tmp_path):
    path = tmp_path / "a.txt"
    path.write_text("old")
    with pytest.raises(FileNotFoundError), atomic_path(path):
        pass
    assert path.read_text() == "old"


def test_thin_writers_round_trip(tmp_path):
    write_text(tmp_path / "t.md", "# hi\n")
    assert (tmp_path / "t.md").read_text() == "# hi\n"
    write_json(tmp_path / "s.json", {"a": np.float32(0.5), "b": math.nan, "c": (1, 2)})
    assert json.loads((tmp_path / "s.json").read_text()) == {"a": 0.5, "b": None, "c": [1, 2]}
    write_json(tmp_path / "r.json", {"b": math.nan}, safe=False)   # Python-only files
    assert math.isnan(json.loads((tmp_path / "r.json").read_text())["b"])
    arr = np.arange(6, dtype=np.float32).reshape(2, 3)
    save_npy(tmp_path / "c.npy", arr)
    np.testing.assert_array_equal(np.load(tmp_path / "c.npy"), arr)
    df = pd.DataFrame({"x": [1.0, 2.0], "y": ["a", "b"]})
    write_parquet(tmp_path / "p.parquet", df)
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "p.parquet"), df)
    assert not [p for p in tmp_path.iterdir() if is_temp_name(p.name)]


def test_json_that_cannot_be_encoded_keeps_old_file(tmp_path):
    path = tmp_path / "run.json"
    write_json(path, {"ok": 1})
    with pytest.raises(TypeError):
        write_json(path, {"bad": object()})
    assert json.loads(path.read_text()) == {"ok": 1}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run.json"]


def test_atomic_dir_swaps_whole_folder_or_nothing(tmp_path):
    dest = tmp_path / "an-1"
    with atomic_dir(dest) as d:
        (d / "a.json").write_text("1")
    assert (dest / "a.json").read_text() == "1"
    with pytest.raises(Boom), atomic_dir(dest) as d:
        (d / "a.json").write_text("2")
        raise Boom
    assert [p.name for p in dest.iterdir()] == ["a.json"] and (dest / "a.json").read_text() == "1"
    with atomic_dir(dest) as d:
        (d / "b.json").write_text("3")
    assert [p.name for p in dest.iterdir()] == ["b.json"]   # replaced, not merged
    assert sorted(p.name for p in tmp_path.iterdir()) == ["an-1"]
