"""engine.store.transaction: the block's rows land together or not at all."""

from __future__ import annotations

import duckdb
import pytest

from engine.store.transaction import transaction


class Boom(Exception):
    pass


def test_commit_and_rollback_on_a_real_duckdb_file(tmp_path):
    con = duckdb.connect(str(tmp_path / "t.duckdb"))
    con.execute("CREATE TABLE t (k INTEGER PRIMARY KEY, v VARCHAR)")
    with transaction(con):
        con.execute("INSERT INTO t VALUES (1, 'a')")
        con.execute("INSERT INTO t VALUES (2, 'b')")
    with pytest.raises(Boom), transaction(con):
        con.execute("DELETE FROM t WHERE k = 1")
        con.execute("INSERT INTO t VALUES (3, 'c')")
        raise Boom
    with pytest.raises(duckdb.ConstraintException), transaction(con):
        con.execute("DELETE FROM t WHERE k = 2")
        con.execute("INSERT INTO t VALUES (1, 'dup')")   # fails: k = 1 still there
    assert con.execute("SELECT k, v FROM t ORDER BY k").fetchall() == [(1, "a"), (2, "b")]
    with transaction(con):                               # the connection is usable again
        con.execute("INSERT INTO t VALUES (4, 'd')")
    con.close()
    con = duckdb.connect(str(tmp_path / "t.duckdb"), read_only=True)
    assert [r[0] for r in con.execute("SELECT k FROM t ORDER BY k").fetchall()] == [1, 2, 4]
    con.close()
