"""The report's "Predictive uncertainty" section: per run, coverage of the stated 68.27 % and
95 % intervals against their binomial range, width, NLL, CRPS and σ/σ_CRLB, then the same
per SNR bin, from the store's `calibration` and `coverage_by_bin` views (migration 006).
A run without σ says so; a flagged run (coverage outside its binomial range) is warned."""

from __future__ import annotations

import pandas as pd

from engine.report.markdown import num, table

MIN_BIN_N = 100          # per-bin rows the "done" criterion judges (≥ 100 stars)


def load_uncertainty(con, run_ids: list[str]) -> dict[str, pd.DataFrame]:
    """{'calibration', 'bins'} rows of `run_ids`; empty frames on a store before 010."""
    have = {r[0] for r in con.execute("SELECT view_name FROM duckdb_views()").fetchall()}
    if not run_ids or not {"calibration", "coverage_by_bin"} <= have:
        return {}
    cal = con.execute("SELECT * FROM calibration WHERE run_id IN (SELECT unnest(?))",
                      [run_ids]).df()
    bins = con.execute("SELECT * FROM coverage_by_bin WHERE scheme = 'snr' AND run_id IN "
                       "(SELECT unnest(?)) ORDER BY run_id, bin", [run_ids]).df()
    return {"calibration": cal, "bins": bins}


def uncertainty_section(d) -> list[str]:
    """Markdown lines for the section (d: engine.report.document.ReportData)."""
    out = ["## Predictive uncertainty (calibrated σ per star)", ""]
    uq = getattr(d, "uq", None) or {}
    cal = uq.get("calibration", pd.DataFrame())
    if cal.empty:
        return out + ["No run in this report has calibration rows in the store (a store "
                      "from before migration 006: run `logg-engine ingest`).", ""]
    out += ["Intervals: Mondrian (per SNR bin) split-conformal on the validation stars "
            "that did not choose the model (engine.runs.intervals; engine.models.conformal); "
            "coverage of the test split with the binomial 95 % "
            "range for its count in brackets; NLL/CRPS of N(ŷ, σ); σ/σ_CRLB = median of σ "
            "over the per-star Cramér–Rao σ (1 = the physical limit).", ""]
    names = _labels(d, cal)
    rows, warn, without = [], [], []
    for r in cal.itertuples():
        label = names.get(r.run_id, r.run_id)
        if not r.has_sigma:
            without.append(label)
            continue
        rows.append([label, str(int(r.n)), _cov(r.cov68, r.cov68_lo, r.cov68_hi),
                     _cov(r.cov95, r.cov95_lo, r.cov95_hi), num(r.width95, 3),
                     num(r.nll, 3), num(r.crps, 4), num(r.sigma_crlb_ratio, 2),
                     "⚠" if r.flag or r.n_snr_bins_flagged else ""])
        if r.flag:
            warn.append(f"> ⚠ {label}: overall coverage outside its binomial range "
                        f"(68 %: {_pct(r.cov68)}, 95 %: {_pct(r.cov95)}): its σ is "
                        f"{'too small' if _under(r) else 'too large'}.")
        elif r.n_snr_bins_flagged:
            warn.append(f"> ⚠ {label}: {int(r.n_snr_bins_flagged)} SNR bin(s) outside the "
                        "binomial range (about 1 test in 20 lands outside by chance: 16 per run).")
    if rows:
        out += table(["run", "n", "cov 68 %", "cov 95 %", "width 95 % (dex)", "NLL", "CRPS",
                      "σ/σ_CRLB", "flag"], rows, "lrrrrrrrc") + [""]
    out += warn + ([""] if warn else [])
    if without:
        out += [f"No σ for: {', '.join(without)} (no validation split, or run before "
                "intervals existed): their predictions keep NULL σ.", ""]
    out += _per_bin(uq.get("bins", pd.DataFrame()), names)
    return out


def _per_bin(bins: pd.DataFrame, names: dict[str, str]) -> list[str]:
    if bins.empty:
        return []
    out = ["### Per SNR bin", ""]
    rows = []
    for r in bins.itertuples():
        if not r.n:
            continue
        judged = "" if r.n >= MIN_BIN_N else " (n<100)"
        rows.append([names.get(r.run_id, r.run_id), str(r.label), str(int(r.n)),
                     _cov(r.cov68, r.cov68_lo, r.cov68_hi), _cov(r.cov95, r.cov95_lo,
                                                                  r.cov95_hi) + judged,
                     num(r.width95, 3), num(r.nll, 3), num(r.crps, 4),
                     num(r.sigma_crlb_ratio, 2), "⚠" if r.flag else ""])
    return out + table(["run", "SNR", "n", "cov 68 %", "cov 95 %", "width 95 %", "NLL",
                        "CRPS", "σ/σ_CRLB", "flag"], rows, "llrrrrrrrc") + [""]


def _labels(d, cal: pd.DataFrame) -> dict[str, str]:
    """'model preset size' per run id (the point table's train size when present)."""
    sizes = dict(zip(d.points["run_id"], d.points["train_size"])) if len(d.points) else {}
    return {r.run_id: f"{r.model} {r.preset or ''} {_size(sizes.get(r.run_id))}".strip()
            for r in cal.itertuples()}


def _size(n) -> str:
    from engine.report.markdown import size
    return size(n) if n is not None else ""


def _cov(x, lo, hi) -> str:
    if x is None or x != x:
        return "—"
    return f"{100 * x:.1f} % [{100 * lo:.1f}, {100 * hi:.1f}]"


def _under(r) -> bool:
    """True when a stated interval covers less than its binomial range (σ too small)."""
    return bool(r.cov68 < r.cov68_lo or r.cov95 < r.cov95_lo)


def _pct(x) -> str:
    return "—" if x is None or x != x else f"{100 * x:.1f} %"
