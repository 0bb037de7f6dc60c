"""Compare: only the config keys that differ, metric deltas vs the first marked run, and
per-bin ΔR² (SNR bins by default)."""

from __future__ import annotations

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import TabbedContent, TabPane

from logg_tui import queries as data
from logg_tui.screens.base import LoggScreen
from logg_tui.widgets.frame_table import FrameTable

SCHEMES = ["snr", "snr_l2", "mag", "teff_mh", "logg"]


class CompareScreen(LoggScreen):
    HELP = """Compare the marked runs; the first marked run is the baseline. Config: only
the keys (run fields and hyper-parameters) whose values differ. Metrics: R², MAE, RMSE and
bias with Δ against the baseline. Bins: per-bin R² and ΔR² for one binning scheme
(b cycles snr → snr_l2 → mag → teff_mh → logg). t next tab, escape back."""

    BINDINGS = [
        Binding("escape", "app.pop_screen", "Back"),
        Binding("b", "scheme", "Bin scheme"),
        Binding("t", "tab", "Next tab"),
    ]

    def __init__(self, run_ids: list[str]) -> None:
        super().__init__()
        self.run_ids = run_ids
        self.scheme = "snr"

    def body(self) -> ComposeResult:
        with TabbedContent(id="tabs"):
            with TabPane("Config", id="config"):
                yield FrameTable(id="cfg")
            with TabPane("Metrics", id="metrics"):
                yield FrameTable(id="met", digits=4)
            with TabPane("Bins ΔR²", id="bins"):
                yield FrameTable(id="bin")

    def load(self) -> None:
        self.sub_title = f"baseline {self.run_ids[0]} vs {len(self.run_ids) - 1} more"
        self._load(self.scheme)

    @work(thread=True, exclusive=True, group="compare")
    def _load(self, scheme: str) -> None:
        self.fetch(lambda: data.compare(self.ws, self.run_ids, scheme), self._show)

    def _show(self, frames: dict) -> None:
        self.query_one("#cfg", FrameTable).show(frames["config"])
        self.query_one("#met", FrameTable).show(frames["metrics"])
        self.query_one("#bin", FrameTable).show(frames["bins"])
        n = len(frames["config"])
        self.say(f"{len(self.run_ids)} runs · {n} differing config keys · bins: {self.scheme}")

    def action_scheme(self) -> None:
        self.scheme = SCHEMES[(SCHEMES.index(self.scheme) + 1) % len(SCHEMES)]
        self.load()

    def action_tab(self) -> None:
        tabs = self.query_one("#tabs", TabbedContent)
        ids = ["config", "metrics", "bins"]
        tabs.active = ids[(ids.index(tabs.active) + 1) % len(ids)]
