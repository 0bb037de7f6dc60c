"""`?` on any screen: what the screen shows, its keys and the global keys."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

GLOBAL_KEYS = """[b]Everywhere[/b]
  1 Runs   2 Scaling   3 R² vs SNR   4 MoE   5 Jobs   6 SQL   l Launch
  r refresh (ingests finished runs unless --readonly)   ctrl+p command palette
  ? (or F1 inside a text box) this help   escape back   q quit"""


class HelpScreen(ModalScreen):
    BINDINGS = [Binding("escape,question_mark,q,f1", "app.pop_screen", "Close")]

    def __init__(self, screen_help: str, keys: list[tuple[str, str]]) -> None:
        super().__init__()
        self.screen_help = screen_help
        self.keys = keys

    def compose(self) -> ComposeResult:
        text = reflow(self.screen_help)
        keys = "\n".join(f"  {k:<10} {d}" for k, d in self.keys)
        with VerticalScroll(id="dialog"):
            yield Static(f"{text}\n\n[b]Keys here[/b]\n{keys}\n\n{GLOBAL_KEYS}"
                         "\n\n(escape closes)", markup=True)


def reflow(text: str) -> str:
    """Screen HELP strings are wrapped for the source; let the dialog wrap them."""
    paragraphs = [" ".join(line.strip() for line in p.splitlines()) for p in text.split("\n\n")]
    return "\n\n".join(paragraphs)
