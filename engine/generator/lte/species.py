"""Species data of generator v2: the elements, masses and ionisation potentials are v1's
(engine.generator.species); v2 adds temperature-dependent partition functions
(Irwin 1981, data/partition_irwin.csv) in place of v1's constant θ = 1 values."""

from __future__ import annotations

from engine.generator.species import ALPHA_ELEMENTS, CARBON, ELEMENTS, MASS  # noqa: F401


def load_partition_table(path=None):
    """{(Z, ion): (a0..a5)} of ln U(T) = Σ a_i (ln T)^i from data/partition_irwin.csv
    (Irwin 1981, ApJS 45, 621, as distributed with Turbospectrum; made by
    data/make_partition.py). Valid 1000–16000 K."""
    from pathlib import Path

    import numpy as np

    if path is None:
        path = Path(__file__).resolve().parents[3] / "data" / "partition_irwin.csv"
    arr = np.loadtxt(path, delimiter=",", skiprows=1, ndmin=2)
    return {(int(r[0]), int(r[1])): tuple(float(x) for x in r[2:8]) for r in arr}
