"""Markdown formatting helpers shared by the report's sections (engine.report.document*).

Missing or non-finite numbers are shown as "—": a report never prints "nan"."""

from __future__ import annotations

import math

import pandas as pd


def finite(x) -> bool:
    """A real finite number (not None, NaN, ±inf, text or a bool)."""
    if x is None or isinstance(x, (bool, str)):
        return False
    try:
        return math.isfinite(float(x))
    except (TypeError, ValueError):
        return False


def num(x, digits: int = 3) -> str:
    """Fixed-point number, "—" when missing."""
    return f"{float(x):.{digits}f}" if finite(x) else "—"


def signed(x, digits: int = 3) -> str:
    """+0.032 / −0.010 style (ΔR²), "—" when missing."""
    return f"{float(x):+.{digits}f}" if finite(x) else "—"


def with_ci(x, lo, hi, digits: int = 3, sign: bool = False) -> str:
    """"0.712 [0.700, 0.724]"; without a finite interval just the value."""
    f = signed if sign else num
    if not finite(x):
        return "—"
    if finite(lo) and finite(hi):
        return f"{f(x, digits)} [{f(lo, digits)}, {f(hi, digits)}]"
    return f(x, digits)


def size(n) -> str:
    """10000 → 10k, 1000000 → 1M (the research's size labels)."""
    try:
        n = int(n)
    except (TypeError, ValueError):
        return "—"
    if n >= 1_000_000 and n % 1_000_000 == 0:
        return f"{n // 1_000_000}M"
    if n >= 1000 and n % 1000 == 0:
        return f"{n // 1000}k"
    return str(n)


def table(header: list[str], rows: list[list[str]], align: str | None = None) -> list[str]:
    """A markdown table; `align` = one of l/r per column (default: left). A "|" inside a
    cell (e.g. a strategy definition "||flux||") is escaped so it cannot split the row."""
    align = align or "l" * len(header)
    sep = "|" + "|".join("---:" if a == "r" else "---" for a in align) + "|"
    return (["| " + " | ".join(header) + " |", sep]
            + ["| " + " | ".join(str(c).replace("|", "\\|") for c in r) + " |" for r in rows])


def hint(text: str, command: str) -> list[str]:
    """The line a missing section shows: what is missing and the command that fills it."""
    return [f"_{text}: run `{command}`._", ""]


def frame_markdown(df: pd.DataFrame) -> list[str]:
    """A DataFrame as a markdown table (floats to 4 decimals, whole floats as integers,
    missing as —). Used for analyses of kinds the report has no dedicated section for."""
    lines = ["| " + " | ".join(map(str, df.columns)) + " |",
             "|" + "---|" * len(df.columns)]
    counts = {c for c in df.columns if df[c].dtype.kind == "f"
              and df[c].dropna().map(float.is_integer).all() and df[c].notna().any()}
    for row in df.itertuples(index=False):
        cells = [str(int(v)) if c in counts and finite(v) else cell(v)
                 for c, v in zip(df.columns, row)]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def cell(v) -> str:
    if isinstance(v, float):
        return num(v, 4)
    if v is None or str(v) in ("nan", "<NA>", "None", "NaT"):
        return "—"
    return str(v)
