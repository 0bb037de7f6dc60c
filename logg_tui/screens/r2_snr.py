"""R² vs SNR: per fixed SNR bin for the marked runs (else the best run of each model),
with the CRLB ceiling drawn as a band when the store has it."""

from __future__ import annotations

from textual import work
from textual.app import ComposeResult
from textual.containers import Horizontal

from logg_tui import queries as data
from logg_tui.screens.base import LoggScreen
from logg_tui.widgets.frame_table import FrameTable
from logg_tui.widgets.plots import SnrPlot, short_size


class R2SnrScreen(LoggScreen):
    HELP = """R² vs SNR: R² in each fixed SNR bin (x = bin midpoint, log axis) for the runs
marked on the Runs screen, or the best run of each model when none are marked. The grey
band is the physical ceiling: from the latest `logg-engine ceiling` analysis of the runs'
dataset when there is one (r2_max_bin … r2_max_bayes), else r2_max … r2_max_pop from
bin_metrics. The table lists per bin n, R², r2_max and
the gap r2_max − R². Narrower than 100 columns the table goes under the plot, so
its ceiling and gap columns stay in view."""

    # Below 100 columns a side table (45 %) cuts off ceiling and gap: stack instead.
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (100, "-wide")]
    CSS = """  /* screen CSS: it has to beat the app's `.side` width */
    R2SnrScreen.-narrow #snr-body { layout: vertical; }
    R2SnrScreen.-narrow #plot { height: 1fr; }
    R2SnrScreen.-narrow #table { width: 100%; height: 1fr; }
    """

    def body(self) -> ComposeResult:
        with Horizontal(id="snr-body"):
            yield SnrPlot(id="plot")
            yield FrameTable(id="table", classes="side")

    def load(self) -> None:
        self._load(list(self.app.selected))

    @work(thread=True, exclusive=True, group="snr")
    def _load(self, marked: list[str]) -> None:
        def fetch():
            ids = marked or data.default_snr_runs(self.ws)
            rows, ceiling = data.r2_vs_snr(self.ws, ids)
            return rows, ceiling, bool(marked)
        self.fetch(fetch, self._show)

    def _show(self, result) -> None:
        rows, ceiling, marked = result
        band, source = ceiling_band(rows, ceiling)
        self.query_one("#plot", SnrPlot).draw(rows, band)
        import pandas as pd

        if rows.empty:
            table = pd.DataFrame(columns=["run", "label", "r2", "r2_max", "gap", "n"])
        else:  # key columns first: what a narrow table must not lose
            table = rows.assign(run=run_labels(rows))[["run", "label", "r2", "r2_max", "gap",
                                                        "n"]]
        self.query_one("#table", FrameTable).show(
            table, {"label": "SNR", "r2": "R²", "r2_max": "ceiling"})
        who = "marked runs" if marked else "best run per model"
        self.say(f"{rows['run_id'].nunique() if len(rows) else 0} runs ({who}) · "
                 f"ceiling: {source}")


def ceiling_band(rows, ceiling):
    """(x, lo, hi) per SNR bin, and where it came from: the latest `ceiling` analysis
    (band = r2_max_bin … r2_max_bayes) when there is one, else the runs' bin_metrics
    r2_max … r2_max_pop (mean over the runs)."""
    if rows.empty:
        return None, "none"
    if not ceiling.empty:
        return ((ceiling["x"].tolist(), ceiling["lo"].tolist(), ceiling["hi"].tolist()),
                f"analysis {ceiling['analysis_id'].iloc[0]}")
    if rows["r2_max"].notna().any():
        g = rows.groupby("snr_mid")[["r2_max", "r2_max_pop"]].mean().sort_index()
        a, b = g["r2_max"], g["r2_max_pop"].fillna(g["r2_max"])
        return (g.index.tolist(), (a.combine(b, min)).tolist(),
                (a.combine(b, max)).tolist()), "bin_metrics r2_max"
    return None, "none in the store"


def run_labels(rows):
    """'model size' per row; the run id's tail is added where two runs would share it."""
    base = {rid: f"{m} {short_size(n)}" for rid, m, n in
            rows[["run_id", "model", "train_size"]].drop_duplicates("run_id").itertuples(
                index=False)}
    counts: dict[str, int] = {}
    for v in base.values():
        counts[v] = counts.get(v, 0) + 1
    names = {rid: v if counts[v] == 1 else f"{v} …{rid[-4:]}" for rid, v in base.items()}
    return rows["run_id"].map(names)
