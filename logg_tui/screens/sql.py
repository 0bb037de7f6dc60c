"""SQL: a read-only query box over the store; results in a table; tables and the
documented views listed beside it."""

from __future__ import annotations

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widgets import OptionList, TextArea

from logg_tui import queries as data
from logg_tui.screens.base import LoggScreen
from logg_tui.widgets.frame_table import FrameTable

DEFAULT_SQL = "SELECT * FROM leaderboard LIMIT 50"


class SqlScreen(LoggScreen):
    HELP = """SQL over the store, locked down exactly as `logg-engine query`: only SELECT-like
statements (SELECT, FROM, WITH, DESCRIBE, SHOW, SUMMARIZE, EXPLAIN) run; writes, files
(COPY, read_csv, EXPORT), ATTACH, INSTALL/LOAD and SET/PRAGMA are refused.
ctrl+j or F5 runs the query (at most 2000 rows shown); escape leaves the editor (then
1-6 switch screens again), e goes back to it; the list on the left holds the documented
views and the tables: enter on one puts `SELECT * FROM it` in the box.
Views: leaderboard, scaling_curve, r2_vs_snr, bin_table, run_overall (docs/sql.md)."""

    BINDINGS = [Binding("ctrl+j,f5", "run_query", "Run", priority=True),
                Binding("escape", "leave_editor", "Leave editor", show=False),
                Binding("e", "edit", "Edit"),
                Binding("ctrl+o", "focus_objects", "Objects")]

    def body(self) -> ComposeResult:
        with Horizontal():
            yield OptionList(id="objects", classes="side-narrow")
            with Vertical():
                yield TextArea(DEFAULT_SQL, id="query", language=None, classes="query")
                yield FrameTable(id="result")

    def load(self) -> None:
        self._objects()

    @work(thread=True, exclusive=True, group="objects")
    def _objects(self) -> None:
        self.fetch(lambda: data.store_objects(self.ws), self._show_objects)

    def _show_objects(self, df) -> None:
        ol = self.query_one("#objects", OptionList)
        ol.clear_options()
        for name, typ in df.itertuples(index=False):
            tag = "view " if typ == "view" else "table"
            ol.add_option(f"{tag} {name}")
        self.say("ctrl+j / F5 runs the query · read-only")

    @on(OptionList.OptionSelected)
    def _pick(self, event: OptionList.OptionSelected) -> None:
        name = str(event.option.prompt).split()[-1]
        self.query_one("#query", TextArea).text = f"SELECT * FROM {name} LIMIT 100"
        self.action_run_query()

    def action_focus_objects(self) -> None:
        self.query_one("#objects").focus()

    def action_leave_editor(self) -> None:
        """Escape: focus the results, so keys are the screen's again (1-6, ?, r)."""
        if self.focused is self.query_one("#query", TextArea):
            self.query_one("#result", FrameTable).focus()

    def action_edit(self) -> None:
        self.query_one("#query", TextArea).focus()

    def action_run_query(self) -> None:
        sql = self.query_one("#query", TextArea).text
        self.say("running…")
        self._run(sql)

    @work(thread=True, exclusive=True, group="sql")
    def _run(self, sql: str) -> None:
        self.fetch(lambda: data.user_query(self.ws, sql), self._show)

    def _show(self, result) -> None:
        df, cut = result
        self.query_one("#result", FrameTable).show(df)
        self.say(f"{len(df)} rows" + (" (first 2000 shown)" if cut else "")
                 + f" · {len(df.columns)} columns")
