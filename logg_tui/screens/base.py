"""What every screen shares: header, footer, a status line, `?` help, and a `load()`
hook the app calls on refresh. Loading runs in thread workers (never on the UI thread)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import Footer, Header

from logg_tui.queries import StoreBusy
from logg_tui.widgets.status import StatusLine


class LoggScreen(Screen):
    """Subclasses implement `body()` and `load()`; HELP says what the screen shows."""

    HELP = ""
    BINDINGS = [Binding("question_mark", "app.help", "Help", key_display="?")]

    def compose(self) -> ComposeResult:
        yield Header()
        yield from self.body()
        yield StatusLine(id="status")
        yield Footer()

    def body(self) -> ComposeResult:
        yield from ()

    def on_mount(self) -> None:
        self.load()

    def on_screen_resume(self) -> None:
        if getattr(self, "_loaded_once", False):
            self.load()
        self._loaded_once = True

    def load(self) -> None:
        """Start loading this screen's data (a thread worker); override."""

    @property
    def ws(self):
        return self.app.workspace

    def say(self, text: str, *, error: bool = False) -> None:
        try:
            self.query_one("#status", StatusLine).say(text, error=error)
        except Exception:  # screen being torn down
            pass

    def fetch(self, fn: Callable[[], Any], then: Callable[[Any], None]) -> None:
        """Body of a thread worker: call fn, hand the result to `then` on the UI thread;
        a busy/missing store becomes a status line."""
        try:
            result = fn()
        except StoreBusy as exc:
            self.app.call_from_thread(self.say, f"store: {exc}", error=True)
            return
        except Exception as exc:  # a bad user filter, a broken file: say it, stay up
            self.app.call_from_thread(self.say, f"error: {exc}", error=True)
            return
        self.app.call_from_thread(then, result)
