"""Command-palette provider: every screen, launch, refresh, and "Open run <id>" for the
latest runs in the store (read in a thread when the palette opens)."""

from __future__ import annotations

import asyncio
from functools import partial

from textual.command import Hit, Hits, Provider

from logg_tui import queries as data

SCREENS = [("runs", "Runs: all runs"), ("scaling", "Scaling: R² vs training size"),
           ("snr", "R² vs SNR with the ceiling"), ("moe", "MoE and de-leakage tables"),
           ("jobs", "Jobs: launched runs"), ("sql", "SQL: read-only query box"),
           ("calibration", "Calibration: coverage and σ vs the CRLB")]
PALETTE_RUNS = 500


class LoggCommands(Provider):
    async def startup(self) -> None:
        try:
            page = await asyncio.to_thread(data.runs_page, self.app.workspace,
                                           limit=PALETTE_RUNS)
            self.run_ids = [str(r) for r in page.column("run_id")]
        except Exception:  # no store / held store: the palette still has the rest
            self.run_ids = []

    def _commands(self):
        app = self.app
        for mode, text in SCREENS:
            yield f"Go to {text}", partial(app.switch_mode, mode)
        yield "Launch a run", app.action_launch
        yield "Refresh (ingest finished runs)", app.action_refresh
        yield "Help for this screen", app.action_help
        for rid in getattr(self, "run_ids", []):
            yield f"Open run {rid}", partial(app.open_run, rid)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for text, cb in self._commands():
            score = matcher.match(text)
            if score > 0:
                yield Hit(score, matcher.highlight(text), cb)

    async def discover(self) -> Hits:
        for text, cb in list(self._commands())[:9]:
            yield Hit(1.0, text, cb)
