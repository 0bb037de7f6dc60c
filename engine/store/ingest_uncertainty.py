"""Store rows for a run's predictive uncertainty (metrics.json `uncertainty`, written by the
runner through engine.eval.uncertainty): `uq_coverage` and `uq_scores` (migration 006).
Called by engine.store.ingest inside the run's one transaction."""

from __future__ import annotations

from collections.abc import Callable

from engine.eval.uncertainty import COVERAGE_FIELDS, SCORE_FIELDS

UQ_TABLES = ("uq_coverage", "uq_scores")


def write_uncertainty(con, run_id: str, metrics: dict | None,
                      bulk: Callable[..., None]) -> None:
    """Insert the run's coverage and score rows (nothing when the run has none)."""
    uq = (metrics or {}).get("uncertainty") or {}
    for table, fields, rows in (("uq_coverage", COVERAGE_FIELDS, uq.get("coverage")),
                                ("uq_scores", SCORE_FIELDS, uq.get("scores"))):
        if rows:
            bulk(con, table, ["run_id", *fields],
                 [(run_id, *[r.get(f) for f in fields]) for r in rows])

