"""engine.logtail: the end of a log without reading it whole (logg-tui's job and run logs,
the run-state fold, the study's progress lines)."""

from __future__ import annotations

import os

from engine.logtail import last_line, newest_log, tail_lines


def test_tail_reads_only_the_end(tmp_path):
    f = tmp_path / "log"
    f.write_text("".join(f"line {i}\n" for i in range(10_000)))
    assert tail_lines(f, 3) == ["line 9997", "line 9998", "line 9999"]
    assert tail_lines(f, 5, max_bytes=30)[-1] == "line 9999"
    assert tail_lines(f, max_bytes=30) == ["line 9998", "line 9999"]   # the cut line dropped
    assert tail_lines(tmp_path / "missing") == []


def test_the_last_line_of_a_bar_redrawn_with_carriage_returns(tmp_path):
    f = tmp_path / "step.log"
    f.write_text("$ logg-engine data generate\nbuild: 10/99\rbuild: 42/99\r\n\n")
    assert last_line(f) == "build: 42/99"
    assert last_line(f, limit=5) == "build"
    assert last_line(tmp_path / "missing") == ""


def test_the_newest_log_is_the_running_step(tmp_path):
    assert newest_log(tmp_path / "none") is None
    for name, t in (("a.log", 1), ("b.log", 3), ("c.txt", 9)):
        (tmp_path / name).write_text(name)
        os.utime(tmp_path / name, (t, t))
    assert newest_log(tmp_path) == tmp_path / "b.log"
