"""A DataTable that shows a DataFrame, or plain (columns, rows) — the shape every
data.py query returns. No pandas import here: the first screen must not pay for it."""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence
from typing import Any

from rich.text import Text
from textual.widgets import DataTable

from engine.jsonsafe import plain


def fmt_cell(v: Any, digits: int = 3) -> str | Text:
    """Numbers right-aligned with fixed decimals; missing values as a dim dash."""
    if _missing(v):
        return Text("—", style="dim", justify="right")
    if isinstance(v, bool):
        return str(v)
    if isinstance(v, float):
        if v != 0 and (abs(v) >= 1e5 or abs(v) < 10 ** -digits):
            return Text(f"{v:.3g}", justify="right")
        return Text(f"{v:.{digits}f}", justify="right")
    if isinstance(v, int):
        return Text(f"{v:,}", justify="right")
    if isinstance(v, dt.datetime):
        return v.strftime("%Y-%m-%d %H:%M")
    return str(v)


class FrameTable(DataTable):
    """`show(df)` / `show_rows(columns, rows)` replace the content; the row key is the
    value of `key_column` (else the row number)."""

    DEFAULT_CSS = "FrameTable { height: 1fr; }"

    def __init__(self, *, key_column: str | None = None, digits: int = 3, **kw: Any) -> None:
        super().__init__(cursor_type="row", zebra_stripes=True, **kw)
        self.key_column = key_column
        self.digits = digits
        self.column_names: list[str] = []
        self.keys: list[str] = []

    def show(self, df: Any, labels: dict[str, str] | None = None) -> None:
        self.show_rows([str(c) for c in df.columns],
                       list(df.itertuples(index=False, name=None)), labels)

    def show_rows(self, columns: Sequence[str], rows: Sequence[Sequence[Any]],
                  labels: dict[str, str] | None = None) -> None:
        """Column widths are computed here from the formatted cells (deterministic, so
        snapshots do not depend on render timing)."""
        self.clear(columns=True)
        labels = labels or {}
        cells = [[fmt_cell(plain(v), self.digits) for v in row] for row in rows]
        for j, c in enumerate(columns):
            label = labels.get(c, c)
            width = max([len(label)] + [_width(r[j]) for r in cells])
            self.add_column(label, key=c, width=min(width, 60))
        k = list(columns).index(self.key_column) if self.key_column in columns else None
        self.column_names = list(columns)
        self.keys = [str(raw[k]) if k is not None else str(i) for i, raw in enumerate(rows)]
        for row, key in zip(cells, self.keys):
            self.add_row(*row, key=key)

    def current_key(self) -> str | None:
        """The row key under the cursor (None on an empty table)."""
        if not self.row_count:
            return None
        try:
            return self.coordinate_to_cell_key(self.cursor_coordinate).row_key.value
        except Exception:  # cursor outside the rows
            return None


def _missing(v: Any) -> bool:
    if v is None or type(v).__name__ == "NaTType":
        return True
    return isinstance(v, float) and math.isnan(v)


def _width(cell: Any) -> int:
    return Text(cell).cell_len if isinstance(cell, str) else cell.cell_len
