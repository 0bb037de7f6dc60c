"""Plot widgets over textual-plotext: each draws from plain arrays/DataFrames it is given."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

from textual_plotext import PlotextPlot

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

COLORS = ["cyan", "orange", "green", "magenta", "red", "blue", "yellow", "white"]


class Plot(PlotextPlot):
    """A PlotextPlot with an explanatory message when there is nothing to draw."""

    def empty(self, title: str, message: str) -> None:
        plt = self.plt
        plt.clear_figure()
        plt.title(f"{title} — {message}")
        self.refresh()


class ScalingPlot(Plot):
    def draw(self, df: pd.DataFrame, metric: str = "r2") -> None:
        """One line per (model[, dataset, noise]) of `metric` vs train size on a log axis."""
        plt = self.plt
        plt.clear_figure()
        if df.empty:
            return self.empty("Scaling", "no finished runs yet")
        groups = ["model"] + [c for c in ("dataset", "noise_level") if df[c].nunique() > 1]
        for i, (key, g) in enumerate(df.groupby(groups, sort=True)):
            key = key if isinstance(key, tuple) else (key,)
            g = g.sort_values("train_size")
            plt.plot(g["train_size"].tolist(), g[metric].tolist(), marker="dot",
                     color=COLORS[i % len(COLORS)], label=" ".join(map(str, key)))
        plt.xscale("log")
        sizes = sorted(set(df["train_size"].astype(int)))
        plt.xticks(sizes, [short_size(n) for n in sizes])
        plt.xlabel("training size")
        plt.ylabel("R²" if metric == "r2" else "MAE (dex)")
        plt.title(f"{'R²' if metric == 'r2' else 'MAE'} vs training size")
        self.refresh()


class SnrPlot(Plot):
    def draw(self, rows: pd.DataFrame, band: tuple[Sequence, Sequence, Sequence] | None,
             ) -> None:
        """R² per SNR bin (bin midpoints) per run; the ceiling band (x, lo, hi) beneath."""
        plt = self.plt
        plt.clear_figure()
        if rows.empty:
            return self.empty("R² vs SNR", "no runs with SNR bins selected")
        if band is not None:
            x, lo, hi = band
            plt.plot(list(x), list(hi), color="gray", label="ceiling r2_max", marker="braille")
            if any(a != b for a, b in zip(lo, hi)):
                plt.plot(list(x), list(lo), color="gray", marker="braille")
        for i, (_run_id, g) in enumerate(rows.groupby("run_id", sort=False)):
            g = g.sort_values("snr_mid")
            label = f"{g['model'].iloc[0]} {short_size(g['train_size'].iloc[0])}"
            plt.plot(g["snr_mid"].tolist(), g["r2"].tolist(), marker="dot",
                     color=COLORS[i % len(COLORS)], label=label)
        plt.xscale("log")
        plt.xlabel("SNR (bin midpoint)")
        plt.ylabel("R²")
        plt.title("R² vs SNR, with the CRLB ceiling")
        self.refresh()


class ScatterPlot(Plot):
    def draw(self, y_true: np.ndarray, y_pred: np.ndarray) -> None:
        plt = self.plt
        plt.clear_figure()
        if len(y_true) == 0:
            return self.empty("Predicted vs true", "no predictions")
        plt.scatter(list(map(float, y_true)), list(map(float, y_pred)), marker="dot",
                    color="cyan")
        import numpy as np

        lo, hi = float(np.nanmin(y_true)), float(np.nanmax(y_true))
        plt.plot([lo, hi], [lo, hi], color="gray")
        plt.xlabel("true log g")
        plt.ylabel("predicted")
        plt.title(f"predicted vs true ({len(y_true)} pts)")
        self.refresh()


class HistPlot(Plot):
    def draw(self, residuals: np.ndarray, bins: int = 30) -> None:
        plt = self.plt
        plt.clear_figure()
        import numpy as np

        r = residuals[np.isfinite(residuals)]
        if len(r) == 0:
            return self.empty("Residuals", "no predictions")
        plt.hist(list(map(float, r)), bins=bins, color="orange")
        plt.xlabel("predicted − true (dex)")
        plt.title(f"residuals: mean {r.mean():+.3f}, sd {r.std():.3f}")
        self.refresh()


class CurvePlot(Plot):
    def draw(self, history: pd.DataFrame) -> None:
        """Training curves from metric_history, one line per (name, split)."""
        plt = self.plt
        plt.clear_figure()
        if history.empty:
            return self.empty("Training curve", "this model records no metric history")
        for i, (key, g) in enumerate(history.groupby(["name", "split"], dropna=False)):
            name, split = key
            label = str(name) if split is None or (isinstance(split, float)
                                                   and math.isnan(split)) else f"{name}"
            plt.plot(g["step"].tolist(), g["value"].tolist(), color=COLORS[i % len(COLORS)],
                     label=label, marker="braille")
        plt.xlabel("step")
        plt.title("training curve")
        self.refresh()


def short_size(n) -> str:
    n = int(n)
    return f"{n // 1_000_000}M" if n >= 1_000_000 and n % 1_000_000 == 0 else \
        f"{n // 1000}k" if n >= 1000 and n % 1000 == 0 else str(n)
