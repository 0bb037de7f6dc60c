"""Scaling: R² (or MAE) vs training size on a log axis, one line per model, from the
`scaling_curve` view; the (model, size, R², MAE) table beside it."""

from __future__ import annotations

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal

from logg_tui import queries as data
from logg_tui.screens.base import LoggScreen
from logg_tui.widgets.frame_table import FrameTable
from logg_tui.widgets.plots import ScalingPlot


class ScalingScreen(LoggScreen):
    HELP = """Scaling: the latest finished run per (model, dataset, noise level, training
size) from the `scaling_curve` view, drawn on a log size axis (one line per model) with
the table of model, size, R² and MAE beside it. m toggles R² / MAE."""

    BINDINGS = [Binding("m", "metric", "R²/MAE")]

    def __init__(self) -> None:
        super().__init__()
        self.metric = "r2"
        self.frame = None

    def body(self) -> ComposeResult:
        with Horizontal():
            yield ScalingPlot(id="plot")
            yield FrameTable(id="table", classes="side")

    def load(self) -> None:
        self._load()

    @work(thread=True, exclusive=True, group="scaling")
    def _load(self) -> None:
        self.fetch(lambda: data.scaling(self.ws), self._show)

    def _show(self, df) -> None:
        self.frame = df
        self.query_one("#plot", ScalingPlot).draw(df, self.metric)
        cols = ["model", "train_size", "r2", "mae"]
        if not df.empty and df["noise_level"].nunique() > 1:
            cols.insert(1, "noise_level")
        table = df[cols] if not df.empty else df.reindex(columns=cols)
        self.query_one("#table", FrameTable).show(
            table, {"train_size": "size", "r2": "R²", "mae": "MAE", "noise_level": "noise"})
        self.say(f"{len(df)} points, {df['model'].nunique() if len(df) else 0} models · "
                 f"plotting {'R²' if self.metric == 'r2' else 'MAE'}")

    def action_metric(self) -> None:
        self.metric = "mae" if self.metric == "r2" else "r2"
        if self.frame is not None:
            self._show(self.frame)
