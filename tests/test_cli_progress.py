"""Progress where no terminal is: `nohup logg-engine … > log` must show how far a long step
is (the study's lattice runs ~40 minutes), as plain lines, not a bar drawn only at the end."""

from __future__ import annotations

import io

from rich.console import Console

from engine.cli.progress import PlainLines, RichProgress


def test_plain_lines_come_every_interval_with_the_time_left_from_the_rate():
    lines = PlainLines(every_s=60)
    assert lines.line("node lattice", 0, 100, now=1000.0) == "node lattice: 0/100 (0 %) [0m00s]"
    assert lines.line("node lattice", 10, 100, now=1030.0) is None          # within 60 s
    # 30 done in 60 s → 0.5/s → 70 left take 140 s
    assert (lines.line("node lattice", 30, 100, "nodes/s=0.5", now=1060.0)
            == "node lattice: 30/100 (30 %) nodes/s=0.5 [1m00s, ~2m20s left]")
    assert lines.line("node lattice", 31, 100, now=1061.0) is None
    # the end is always reported, once, without a time left
    assert lines.line("node lattice", 100, 100, now=1062.0) == "node lattice: 100/100 (100 %) [1m02s]"
    assert lines.line("node lattice", 100, 100, now=1063.0) is None


def test_a_resumed_build_estimates_from_its_own_rate_not_from_the_skipped_work():
    lines = PlainLines(every_s=0)
    lines.line("lattice", 9000, 10000, now=0.0)            # 9000 already stored
    assert lines.line("lattice", 9100, 10000, now=3600.0).endswith("[1h00m, ~9h00m left]")


def test_unknown_totals_print_the_count():
    assert PlainLines(every_s=0).line("reading", 7, None, now=0.0) == "reading: 7 [0m00s]"


def test_rich_progress_writes_plain_lines_when_its_console_is_no_terminal(monkeypatch):
    monkeypatch.setenv("LOGG_PROGRESS_EVERY_S", "3600")
    buf = io.StringIO()
    with RichProgress("generate", console=Console(file=buf, force_terminal=False)) as cb:
        cb("start", what="train_200k_0", total=4)
        for k in range(1, 5):
            cb("progress", done=k, total=4, rows_s=2280.0)
    out = buf.getvalue().splitlines()
    assert out[0].startswith("train_200k_0: 1/4 (25 %) rows_s=2280")
    assert any(x.startswith("train_200k_0: 4/4 (100 %)") for x in out)
    assert not any(x.startswith("train_200k_0: 2/4") for x in out)      # within the interval


def test_in_a_terminal_no_plain_lines_are_added():
    buf = io.StringIO()
    with RichProgress("generate", console=Console(file=buf, force_terminal=True)) as cb:
        cb("start", what="x", total=2)
        cb("progress", done=2, total=2)
    assert "x: 2/2 (100 %)" not in buf.getvalue()


def test_plain_lines_are_not_wrapped_at_the_console_width(monkeypatch):
    monkeypatch.setenv("LOGG_PROGRESS_EVERY_S", "0")
    buf = io.StringIO()
    with RichProgress("g", console=Console(file=buf, force_terminal=False, width=40)) as cb:
        cb("start", what="a_rather_long_step_name_for_a_narrow_log", total=10)
        cb("progress", done=1, total=10)
        cb("progress", done=5, total=10, note="x" * 30)
    assert any(x.startswith("a_rather_long_step_name_for_a_narrow_log: 5/10 (50 %) note=xxx")
               and x.endswith(" left]") for x in buf.getvalue().splitlines())
