"""Calibration plots: the reliability diagram (observed vs nominal coverage) and σ_pred /
σ_CRLB per SNR bin, one line per run (textual-plotext, like widgets/plots.py)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from logg_tui.widgets.plots import COLORS, Plot, short_size

if TYPE_CHECKING:
    import pandas as pd


class ReliabilityPlot(Plot):
    def draw(self, rel: pd.DataFrame, names: dict[str, str]) -> None:
        """Observed vs nominal coverage of N(ŷ, σ) (dots on a line) per run; the diagonal
        is perfect calibration (below it: σ too small)."""
        plt = self.plt
        plt.clear_figure()
        if rel.empty:
            return self.empty("Reliability", "no run with σ selected")
        plt.plot([0, 1], [0, 1], color="gray", marker="braille")
        for i, (run_id, g) in enumerate(rel[rel["scheme"] == "gauss"].groupby(
                "run_id", sort=False)):
            plt.plot(g["nominal"].tolist(), g["observed"].tolist(), marker="dot",
                     color=COLORS[i % len(COLORS)], label=names.get(run_id, run_id))
        plt.xlim(0, 1)
        plt.ylim(0, 1)
        plt.xlabel("nominal")
        plt.ylabel("observed")
        plt.title("coverage: observed vs nominal")
        self.refresh()


class SigmaCrlbPlot(Plot):
    def draw(self, snr: pd.DataFrame, names: dict[str, str]) -> None:
        """Median σ_pred / σ_CRLB per SNR bin (x = bin midpoint, log) per run; 1 = the
        Cramér–Rao bound."""
        plt = self.plt
        plt.clear_figure()
        if snr.empty or snr["sigma_crlb_ratio"].isna().all():
            return self.empty("σ / σ_CRLB", "no CRLB in these runs' test split")
        from engine.eval.bins import SNR
        mids = {b: (lo + hi) / 2 for b, (lo, hi) in enumerate(SNR.bounds())}
        xs = sorted(mids.values())
        plt.plot([xs[0], xs[-1]], [1, 1], color="gray", marker="braille")
        for i, (run_id, g) in enumerate(snr.groupby("run_id", sort=False)):
            g = g.dropna(subset=["sigma_crlb_ratio"])
            plt.plot([mids[int(b)] for b in g["bin"]], g["sigma_crlb_ratio"].tolist(),
                     marker="dot", color=COLORS[i % len(COLORS)],
                     label=names.get(run_id, run_id))
        plt.xscale("log")
        plt.xlabel("SNR")
        plt.title("σ_pred / σ_CRLB per SNR bin")
        self.refresh()


def run_names(summary: pd.DataFrame) -> dict[str, str]:
    """'model size' per run; the run id's tail where two would share a name."""
    base = {r.run_id: f"{r.model} {short_size(r.train_size)}" for r in summary.itertuples()}
    seen: dict[str, int] = {}
    for v in base.values():
        seen[v] = seen.get(v, 0) + 1
    return {k: v if seen[v] == 1 else f"{v} …{k[-4:]}" for k, v in base.items()}
