"""Runs: every run in the store; sort, filter (quick text or a SQL WHERE fragment), mark
several to compare or to plot against SNR."""

from __future__ import annotations

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.widgets import DataTable, Input

from logg_tui import queries as data
from logg_tui.screens.base import LoggScreen
from logg_tui.widgets.frame_table import FrameTable

LABELS = {"sel": "✓", "run_id": "run", "size": "size", "noise": "noise", "r2": "R²",
          "mae": "MAE", "duration_s": "dur s", "started": "started"}
SORT_CYCLE = ["started", "r2", "mae", "size", "model", "status", "duration_s", "run_id"]


class RunsScreen(LoggScreen):
    AUTO_FOCUS = "#runs"
    HELP = """Runs: every run in the store (latest first), with its test-set R² and MAE.
/ quick filter (matches run id, model, status, preset, dataset); w SQL WHERE fragment over
the columns (e.g. `model = 'ridge' AND r2 > 0.5`); s cycle the sort column, o flip the
order (or click a header); + show 4× more rows (the first 100 are shown; sorting and
filtering always run over every run in the store); space mark a run, c compare the
marked runs, n R² vs SNR of the marked runs, enter run detail, x clear marks."""

    BINDINGS = [
        Binding("slash", "focus_filter", "Filter", key_display="/"),
        Binding("w", "focus_where", "WHERE"),
        Binding("s", "cycle_sort", "Sort"),
        Binding("o", "flip_order", "Order"),
        Binding("space", "mark", "Mark"),
        Binding("c", "compare", "Compare"),
        Binding("n", "snr", "R²/SNR"),
        Binding("x", "clear_marks", "Clear", show=False),
        Binding("plus", "more", "More rows", show=False, key_display="+"),
        Binding("enter", "open", "Detail", show=False),
        Binding("escape", "focus_table", "Table", show=False),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.sort, self.descending = "started", True
        self.limit = data.RUNS_LIMIT

    def body(self) -> ComposeResult:
        with Horizontal(id="filters"):
            yield Input(placeholder="/ filter text", id="filter")
            yield Input(placeholder="w SQL WHERE, e.g. r2 > 0.5 AND model = 'ridge'",
                        id="where")
        yield FrameTable(key_column="run_id", id="runs")

    def load(self) -> None:
        self.say("loading runs…")
        self._load(self.query_one("#filter", Input).value,
                   self.query_one("#where", Input).value)

    @work(thread=True, exclusive=True, group="runs")
    def _load(self, text: str, where: str) -> None:
        self.fetch(lambda: data.runs_page(self.ws, text=text, where=where, sort=self.sort,
                                          descending=self.descending, limit=self.limit),
                   self._show)

    def _show(self, page: data.RunsPage) -> None:
        marks = set(self.app.selected)
        ids = page.column("run_id")
        rows = [("✓" if rid in marks else "", *r) for rid, r in zip(ids, page.rows)]
        table = self.query_one("#runs", FrameTable)
        cursor = table.current_key()
        table.show_rows(["sel", *page.columns], rows, LABELS)
        if cursor in ids:
            table.move_cursor(row=ids.index(cursor))
        shown = f"{len(rows)} of {page.total}" if page.total > len(rows) else f"{page.total}"
        arrow = "↓" if self.descending else "↑"
        self.say(f"{shown} runs · sorted by {self.sort} {arrow} · {len(marks)} marked"
                 + (" · read-only" if self.app.readonly else ""))

    @on(Input.Submitted)
    def _filter(self) -> None:
        self.load()
        self.query_one("#runs").focus()

    @on(DataTable.HeaderSelected)
    def _header(self, event: DataTable.HeaderSelected) -> None:
        col = str(event.column_key.value)
        if col in data.SORTABLE:
            self.descending = not self.descending if col == self.sort else True
            self.sort = col
            self.load()

    @on(DataTable.RowSelected)
    def _row(self, event: DataTable.RowSelected) -> None:
        self.action_open()

    def action_focus_filter(self) -> None:
        self.query_one("#filter").focus()

    def action_focus_where(self) -> None:
        self.query_one("#where").focus()

    def action_focus_table(self) -> None:
        self.query_one("#runs").focus()

    def action_cycle_sort(self) -> None:
        i = SORT_CYCLE.index(self.sort) if self.sort in SORT_CYCLE else -1
        self.sort = SORT_CYCLE[(i + 1) % len(SORT_CYCLE)]
        self.load()

    def action_more(self) -> None:
        self.limit *= 4
        self.load()

    def action_flip_order(self) -> None:
        self.descending = not self.descending
        self.load()

    def action_mark(self) -> None:
        table = self.query_one("#runs", FrameTable)
        key = table.current_key()
        if key is None:
            return
        sel = self.app.selected
        if key in sel:
            sel.remove(key)
        else:
            sel.append(key)
        table.update_cell(key, "sel", "✓" if key in sel else "")
        table.action_cursor_down()
        self.say(f"{len(sel)} marked: {', '.join(sel[-3:])}")

    def action_clear_marks(self) -> None:
        self.app.selected.clear()
        self.load()

    def action_open(self) -> None:
        key = self.query_one("#runs", FrameTable).current_key()
        if key:
            self.app.open_run(key)

    def action_compare(self) -> None:
        if len(self.app.selected) < 2:
            self.say("mark at least two runs (space) to compare", error=True)
            return
        self.app.open_compare(list(self.app.selected))

    def action_snr(self) -> None:
        self.app.switch_mode("snr")
