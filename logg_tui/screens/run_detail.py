"""Run detail: config, provenance and the reproduce command; metrics with CIs; the per-bin
table; predicted-vs-true and residuals; the training curve; the log tail."""

from __future__ import annotations

import json

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.widgets import Log, Static, TabbedContent, TabPane

from engine.logtail import tail_lines
from logg_tui import queries as data
from logg_tui.screens.base import LoggScreen
from logg_tui.widgets.frame_table import FrameTable
from logg_tui.widgets.plots import CurvePlot, HistPlot, ScatterPlot

PROVENANCE = ("status", "error", "dataset_name", "dataset_fingerprint", "generator_version",
              "test_split",
              "val_split", "train_size", "noise_level", "seed", "config_hash", "git_sha",
              "git_dirty", "host", "device", "started", "ended", "duration_s",
              "peak_rss_mb", "run_dir")
MAIN_METRICS = ("r2", "mae", "rmse", "bias", "p90", "slope", "n", "r2_max", "eta")
# The Bins tab's columns, key ones first so that 80 columns show R², its CI and the ceiling.
BIN_COLUMNS = ["scheme", "label", "n", "r2", "r2_lo", "r2_hi", "r2_max", "eta", "mae", "rmse",
               "bias", "bin"]


class RunDetailScreen(LoggScreen):
    HELP = """Run detail. Tabs: Overview (provenance, hyper-parameters, the command that
reproduces the run, overall metrics with 95 % bootstrap CIs), Bins (per-bin R², CI, MAE,
ceiling r2_max and η for every scheme), Plots (predicted vs true scatter on a sample and
the residual histogram), Curve (metric_history of iterative models), Log (stdout.log and
events.jsonl tails). t / shift+t next/previous tab, r reload, escape back."""

    BINDINGS = [
        Binding("escape", "app.pop_screen", "Back"),
        Binding("t", "tab(1)", "Next tab"),
        Binding("shift+t", "tab(-1)", "Prev tab", show=False),
    ]

    def __init__(self, run_id: str) -> None:
        super().__init__()
        self.run_id = run_id

    def body(self) -> ComposeResult:
        with TabbedContent(id="tabs"):
            with TabPane("Overview", id="overview"):
                with VerticalScroll():
                    yield Static(id="summary")
                    yield FrameTable(id="metrics", digits=4)
            with TabPane("Bins", id="bins"):
                yield FrameTable(id="bintable")
            with TabPane("Plots", id="plots"):
                with Horizontal():
                    yield ScatterPlot(id="scatter")
                    yield HistPlot(id="hist")
            with TabPane("Curve", id="curve"):
                yield CurvePlot(id="curveplot")
            with TabPane("Log", id="log"):
                yield Log(id="logview", highlight=False)

    def action_tab(self, step: int) -> None:
        tabs = self.query_one("#tabs", TabbedContent)
        ids = ["overview", "bins", "plots", "curve", "log"]
        i = ids.index(tabs.active) if tabs.active in ids else 0
        tabs.active = ids[(i + step) % len(ids)]

    def load(self) -> None:
        self.sub_title = self.run_id
        self.say(f"loading {self.run_id}…")
        self._load()

    @work(thread=True, exclusive=True, group="detail")
    def _load(self) -> None:
        self.fetch(lambda: data.run_detail(self.ws, self.run_id), self._show)
        self.fetch(self._tails, self._show_log)

    def _tails(self) -> list[str]:
        folder = data.run_folder(self.ws, self.run_id)
        out = ["── stdout.log ──", *tail_lines(folder / "stdout.log", 150)]
        out += ["── events.jsonl ──", *tail_lines(folder / "events.jsonl", 60)]
        return out

    def _show(self, d: data.RunDetail) -> None:
        self.query_one("#summary", Static).update(summary_text(d))
        self.query_one("#metrics", FrameTable).show(metrics_table(d.overall))
        self.query_one("#bintable", FrameTable).show(d.bins[BIN_COLUMNS])
        s = d.sample
        y, p = s["y_true"].to_numpy(float), s["y_pred"].to_numpy(float)
        self.query_one("#scatter", ScatterPlot).draw(y, p)
        self.query_one("#hist", HistPlot).draw(p - y)
        self.query_one("#curveplot", CurvePlot).draw(d.history)
        r = d.run
        self.say(f"{r['run_id']} · {r['model']} · {r['status']} · "
                 f"{len(d.bins)} bin rows · {len(s)} sampled predictions")

    def _show_log(self, lines: list[str]) -> None:
        log = self.query_one("#logview", Log)
        log.clear()
        log.write_lines(lines)


def summary_text(d: data.RunDetail) -> str:
    r = d.run
    lines = [f"[b]{r['run_id']}[/b]  {r.get('model')} / preset {r.get('preset')}",
             "", "[b]reproduce[/b]", f"  {r.get('command') or '—'}", "", "[b]provenance[/b]"]
    lines += [f"  {k:<20} {_v(r.get(k))}" for k in PROVENANCE if r.get(k) is not None]
    lines += ["", "[b]hyper-parameters[/b]"]
    if d.params.empty:
        lines.append("  —")
    for _, p in d.params.iterrows():
        lines.append(f"  {p['key']:<20} {_v(p['value'])}")
    return "\n".join(lines)


def metrics_table(overall):
    """subset × metric with the 95 % CI where the store has one, main metrics first."""
    import numpy as np
    import pandas as pd

    if overall.empty:
        return pd.DataFrame({"metric": [], "value": []})
    o = overall.copy()
    o["order"] = [MAIN_METRICS.index(m) if m in MAIN_METRICS else 99 for m in o["metric"]]
    o = o.sort_values(["subset", "order", "metric"])
    o["95% CI"] = [f"[{lo:.4f}, {hi:.4f}]" if np.isfinite(lo) and np.isfinite(hi) else ""
                   for lo, hi in zip(o["lo"].astype(float), o["hi"].astype(float))]
    return o[["subset", "metric", "value", "95% CI"]].reset_index(drop=True)


def _v(v) -> str:
    if isinstance(v, float):
        return f"{v:.6g}"
    if isinstance(v, (dict, list)):
        return json.dumps(v)
    return str(v)
