"""MoE and de-leakage tables: per-bin oracle, gates and de-leakage (analyses), shown
when the store has them, with an explanation otherwise."""

from __future__ import annotations

from textual import work
from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.widgets import Static

from logg_tui import queries as data
from logg_tui.screens.base import LoggScreen
from logg_tui.widgets.frame_table import FrameTable

EMPTY = {
    "oracle": "No MoE oracle results yet. `logg-engine moe oracle --bins teff-mh|snr "
              "--size N` trains one expert per bin and records per-bin oracle vs global "
              "R² (view moe_bins).",
    "moe_gate": "No gate results yet. `logg-engine moe gate --bins teff-mh --gate "
                "logreg|mlp|linear --routing soft|hard|fallback --size N` records per-bin "
                "R² of a deployable gate (view moe_gates); one column per gate/routing.",
    "deleakage": "No de-leakage analysis yet. `logg-engine deleakage` checks which error-"
                 "vector features give SNR without leaking log g (view deleakage).",
}
TITLES = {"oracle": "MoE oracle per bin (expert vs global R²)",
          "moe_gate": "MoE with learned gate (R² per bin and gate)",
          "deleakage": "De-leakage (feature strategy → log g R², SNR R²)"}


class MoeScreen(LoggScreen):
    HELP = """MoE and de-leakage, from the latest analysis of each kind. Oracle: per bin the
expert's test R², the global model's R² on the same rows and ΔR² (view moe_bins). Gate:
per bin R² of each gate/routing of the latest binning (view moe_gates). De-leakage: per
feature strategy the log g R², the SNR R² and whether it passed (view deleakage). Each
section explains how to produce it when the store has none."""

    def body(self) -> ComposeResult:
        with VerticalScroll():
            for key in ("oracle", "moe_gate", "deleakage"):
                yield Static(f"[b]{TITLES[key]}[/b]", classes="section")
                yield Static(EMPTY[key], id=f"{key}-empty", classes="empty")
                yield FrameTable(id=f"{key}-table", classes="moe")

    def load(self) -> None:
        self._load()

    @work(thread=True, exclusive=True, group="moe")
    def _load(self) -> None:
        self.fetch(lambda: data.moe_tables(self.ws), self._show)

    def _show(self, frames: dict) -> None:
        present = []
        for key, df in frames.items():
            table = self.query_one(f"#{key}-table", FrameTable)
            empty = self.query_one(f"#{key}-empty", Static)
            table.display, empty.display = not df.empty, df.empty
            if not df.empty:
                table.show(df.drop(columns=["row_idx"], errors="ignore"))
                present.append(key)
        self.say(f"present: {', '.join(present) or 'none yet'}")
