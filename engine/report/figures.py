"""The results page's figures, drawn from store frames: PNG images (matplotlib, Agg) and the
same curves as terminal text (plotext), so docs/results.md shows them on GitHub and in a
terminal alike. Each function takes plain DataFrames and returns what it drew."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from engine.atomic import atomic_path


def short_size(n: float) -> str:
    n = int(n)
    if n >= 1_000_000 and n % 1_000_000 == 0:
        return f"{n // 1_000_000}M"
    return f"{n // 1000}k" if n >= 1000 and n % 1000 == 0 else str(n)


def scaling_png(curve: pd.DataFrame, path: Path) -> Path:
    """R² [95 % CI] vs training size, log x, one line per model."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 4.0), dpi=120)
    for model, g in curve.sort_values("train_size").groupby("model"):
        err = [g["r2"] - g["r2_lo"], g["r2_hi"] - g["r2"]]
        ax.errorbar(g["train_size"], g["r2"], yerr=err, marker="o", capsize=3, label=model)
    sizes = sorted(curve["train_size"].unique())
    ax.set_xscale("log")
    ax.set_xticks(sizes, [short_size(n) for n in sizes])
    ax.minorticks_off()
    ax.set_xlabel("training spectra")
    ax.set_ylabel("test R² (95 % CI)")
    ax.grid(alpha=0.3)
    ax.legend()
    return _save(fig, path)


def r2_vs_snr_png(bins: pd.DataFrame, path: Path, prior: pd.DataFrame | None = None) -> Path:
    """R² per SNR bin for one run per model, the CRLB ceiling R²_max as a grey line and,
    given `prior` (snr_mid, r2_max_bayes), the ceiling with the prior as a dashed one."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 4.0), dpi=120)
    for (model, size), g in bins.sort_values("snr_mid").groupby(["model", "train_size"]):
        ax.plot(g["snr_mid"], g["r2"], marker="o", label=f"{model} {short_size(size)}")
    ceiling = bins.groupby("snr_mid")["r2_max"].median().dropna()
    if not ceiling.empty:
        ax.plot(ceiling.index, ceiling.values, color="grey", lw=3, alpha=0.6,
                label="ceiling R²_max (CRLB, unbiased)")
    if prior is not None and not prior.empty:
        ax.plot(prior["snr_mid"], prior["r2_max_bayes"], color="grey", lw=2, ls="--",
                label="ceiling with the prior (R²_max Bayes)")
    ax.set_xlabel("SNR (bin midpoint)")
    ax.set_ylabel("test R²")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return _save(fig, path)


def scaling_text(curve: pd.DataFrame, width: int = 78, height: int = 18) -> str:
    """The scaling curve as terminal text (plotext)."""
    import plotext as plx

    plx.clear_figure()
    plx.plotsize(width, height)
    plx.theme("clear")
    for model, g in curve.sort_values("train_size").groupby("model"):
        plx.plot(g["train_size"].tolist(), g["r2"].tolist(), marker="dot", label=model)
    sizes = sorted(curve["train_size"].unique())
    plx.xscale("log")
    plx.xticks(sizes, [short_size(n) for n in sizes])
    plx.xlabel("training spectra")
    plx.ylabel("R²")
    return _plain_text(plx.build())


def r2_vs_snr_text(bins: pd.DataFrame, width: int = 78, height: int = 18,
                   prior: pd.DataFrame | None = None) -> str:
    import plotext as plx

    plx.clear_figure()
    plx.plotsize(width, height)
    plx.theme("clear")
    for (model, size), g in bins.sort_values("snr_mid").groupby(["model", "train_size"]):
        plx.plot(g["snr_mid"].tolist(), g["r2"].tolist(), marker="dot",
                 label=f"{model} {short_size(size)}")
    ceiling = bins.groupby("snr_mid")["r2_max"].median().dropna()
    if not ceiling.empty:
        plx.plot(ceiling.index.tolist(), ceiling.tolist(), marker="x", label="ceiling")
    if prior is not None and not prior.empty:
        plx.plot(prior["snr_mid"].tolist(), prior["r2_max_bayes"].tolist(), marker="+",
                 label="ceiling + prior")
    plx.xlabel("SNR")
    plx.ylabel("R²")
    return _plain_text(plx.build())


def _plain_text(text: str) -> str:
    """Without terminal colour codes (a markdown code block shows them as garbage)."""
    import re

    return re.sub(r"\x1b\[[0-9;]*m", "", text)


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    import matplotlib.pyplot as plt

    plt.close(fig)
    return path
