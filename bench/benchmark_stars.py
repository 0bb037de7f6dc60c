"""Equivalent widths of the gravity-sensitive features (Ca II triplet, Na I 8183/8195,
Mg I 8807, K I 7699, Paschen P12/P14) on the Turbospectrum benchmark spectra
(data/benchmark_stars/) and on the built-in generator at the same θ, per star × feature,
plus the dwarf/giant contrasts. Writes bench/results/benchmark_stars.md and prints it.

Run after any change to the generator physics: `python bench/benchmark_stars.py`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from engine.generator import benchmark

OUT = Path(__file__).resolve().parent / "results" / "benchmark_stars.md"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--physics", default="me", help="me (generator 1.0) or lte (2.0)")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    args.out = args.out or (OUT if args.physics == "me"
                            else OUT.with_name(f"benchmark_stars_{args.physics}.md"))
    bench = benchmark.load_benchmarks()
    rows = benchmark.compare(bench, physics=args.physics)
    text = benchmark.markdown(rows, benchmark.contrasts(rows), bench["meta"])
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    print(text)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
