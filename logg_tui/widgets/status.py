"""The one-line status bar each screen owns: what is loading, what went wrong."""

from __future__ import annotations

from textual.widgets import Static


class StatusLine(Static):
    DEFAULT_CSS = """
    StatusLine { height: 1; padding: 0 1; background: $panel; color: $text-muted; }
    StatusLine.-error { color: $warning; }
    """

    def say(self, text: str, *, error: bool = False) -> None:
        self.set_class(error, "-error")
        self.update(text)
