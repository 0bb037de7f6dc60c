"""Calibration: are the runs' error bars right, and how far above the physical limit?
Reliability diagram, σ_pred / σ_CRLB per SNR bin, and a per-run coverage table."""

from __future__ import annotations

from textual import work
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical

from logg_tui.screens.base import LoggScreen
from logg_tui.widgets.frame_table import FrameTable


class CalibrationScreen(LoggScreen):
    HELP = """Calibration of the predicted σ (per star, 68.27 % half-width of the conformal
interval) for the runs marked on the Runs screen, else the newest runs that have σ.
Top: reliability diagram, observed vs nominal coverage of N(ŷ, σ) (the diagonal is
perfect; below it σ is too small). Bottom: median σ_pred / σ_CRLB per SNR bin (1 = the
Cramér–Rao bound of the test spectra). Table: coverage of the stated 68 % and 95 %
intervals, median σ/σ_CRLB, and ⚠ when a coverage lies outside its binomial 95 % range
(views calibration, coverage_by_bin). Runs without σ are named in the status line."""

    def body(self) -> ComposeResult:
        from logg_tui.widgets.calibration_plots import ReliabilityPlot, SigmaCrlbPlot
        with Horizontal():
            with Vertical():
                yield ReliabilityPlot(id="reliability")
                yield SigmaCrlbPlot(id="sigma")
            yield FrameTable(id="table", classes="side")

    def load(self) -> None:
        self._load(list(self.app.selected))

    @work(thread=True, exclusive=True, group="calibration")
    def _load(self, marked: list[str]) -> None:
        from logg_tui.calibration_queries import calibration_data
        self.fetch(lambda: calibration_data(self.ws, marked), self._show)

    def _show(self, frames: dict) -> None:
        import pandas as pd

        from logg_tui.widgets.calibration_plots import (ReliabilityPlot, SigmaCrlbPlot,
                                                        run_names)
        summary = frames["summary"]
        names = run_names(summary) if not summary.empty else {}
        self.query_one("#reliability", ReliabilityPlot).draw(frames["reliability"], names)
        self.query_one("#sigma", SigmaCrlbPlot).draw(frames["snr"], names)
        if summary.empty:
            table = pd.DataFrame(columns=["run", "cov68", "cov95", "σ/CRLB", "⚠"])
        else:
            table = pd.DataFrame({
                "run": summary["run_id"].map(names),
                "cov68": (100 * summary["cov68"]).round(1),
                "cov95": (100 * summary["cov95"]).round(1),
                "σ/CRLB": summary["sigma_crlb_ratio"].round(2),
                "⚠": [("⚠" if f or (k or 0) > 0 else "") for f, k in
                      zip(summary["flag"], summary["n_snr_bins_flagged"])]})
        self.query_one("#table", FrameTable).show(table)
        missing = frames.get("missing", pd.DataFrame())
        note = ""
        if not missing.empty:
            names = missing["model"].astype(str) + " " + missing["run_id"].str[-4:]
            note = f" · no σ: {', '.join(names)}"
        self.say(f"{len(summary)} run(s) with σ{note}" if not summary.empty
                 else f"no run with σ yet (runs need a validation split){note}")
