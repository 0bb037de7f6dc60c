"""The one-line status bar each screen owns: what is loading, what went wrong."""

from __future__ import annotations

from textual.widgets import Static


class StatusLine(Static):
    DEFAULT_CSS = """
    StatusLine { height: 1; padding: 0 1; background: $panel; color: $text-muted; }
    StatusLine.-error { color: $warning; }
    """

    def say(self, text: str, *, error: bool = False) -> None:
        """Plain text (an engine error's "[SQL]" is not markup); a multi-line error
        (message, then "fix: ...") on one line."""
        from rich.text import Text

        self.set_class(error, "-error")
        self.update(Text(" · ".join(part.strip() for part in text.splitlines())))
