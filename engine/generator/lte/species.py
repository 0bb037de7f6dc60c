"""Per-element data for Saha–Boltzmann line strengths: solar abundances (Asplund et al.
2009), first and second ionisation potentials (eV), and partition functions. The
generator uses Irwin's (1981) temperature-dependent polynomials (`load_partition_table`,
data/partition_irwin.csv); the constant θ = 1 values below (Gray, App. D) are kept for
data/make_linelist.py, whose frozen v1 ranking selected the shipped lines."""

from __future__ import annotations

# Z: (symbol, A(Z), chi_I, chi_II, log U_I, log U_II, log U_III)
ELEMENTS: dict[int, tuple[str, float, float, float, float, float, float]] = {
    6: ("C", 8.43, 11.260, 24.383, 0.97, 0.78, 0.00),
    7: ("N", 7.83, 14.534, 29.601, 0.61, 0.95, 0.78),
    8: ("O", 8.69, 13.618, 35.121, 0.95, 0.60, 0.95),
    11: ("Na", 6.24, 5.139, 47.286, 0.31, 0.00, 0.60),
    12: ("Mg", 7.60, 7.646, 15.035, 0.00, 0.31, 0.00),
    13: ("Al", 6.45, 5.986, 18.828, 0.77, 0.00, 0.30),
    14: ("Si", 7.51, 8.152, 16.346, 0.98, 0.76, 0.00),
    16: ("S", 7.12, 10.360, 23.338, 0.91, 0.62, 0.95),
    19: ("K", 5.03, 4.341, 31.625, 0.34, 0.00, 0.60),
    20: ("Ca", 6.34, 6.113, 11.872, 0.07, 0.34, 0.00),
    21: ("Sc", 3.15, 6.561, 12.800, 1.08, 1.36, 1.00),
    22: ("Ti", 4.95, 6.828, 13.576, 1.47, 1.75, 1.30),
    23: ("V", 3.93, 6.746, 14.660, 1.56, 1.64, 1.40),
    24: ("Cr", 5.64, 6.767, 16.490, 1.02, 0.86, 1.30),
    25: ("Mn", 5.43, 7.434, 15.640, 0.81, 0.89, 1.10),
    26: ("Fe", 7.50, 7.902, 16.188, 1.43, 1.63, 1.40),
    27: ("Co", 4.99, 7.881, 17.083, 1.52, 1.46, 1.30),
    28: ("Ni", 6.22, 7.640, 18.169, 1.47, 1.02, 1.40),
    29: ("Cu", 4.19, 7.726, 20.292, 0.36, 0.01, 0.90),
    30: ("Zn", 4.56, 9.394, 17.964, 0.00, 0.30, 0.00),
    38: ("Sr", 2.87, 5.695, 11.030, 0.10, 0.34, 0.00),
    39: ("Y", 2.21, 6.217, 12.240, 1.08, 1.18, 1.00),
    40: ("Zr", 2.58, 6.634, 13.130, 1.53, 1.66, 1.50),
    56: ("Ba", 2.18, 5.212, 10.004, 0.36, 0.62, 0.00),
}

# α elements scaled by [α/M] (pfsspec/BOSZ convention); carbon by [C/M].
ALPHA_ELEMENTS = frozenset({8, 10, 12, 14, 16, 18, 20, 22})
CARBON = 6

# Atomic masses (amu) for thermal Doppler widths.
MASS = {6: 12.01, 7: 14.01, 8: 16.00, 11: 22.99, 12: 24.31, 13: 26.98, 14: 28.09,
        16: 32.06, 19: 39.10, 20: 40.08, 21: 44.96, 22: 47.87, 23: 50.94, 24: 52.00,
        25: 54.94, 26: 55.85, 27: 58.93, 28: 58.69, 29: 63.55, 30: 65.38, 38: 87.62,
        39: 88.91, 40: 91.22, 56: 137.33}


def load_partition_table(path=None):
    """{(Z, ion): (a0..a5)} of ln U(T) = Σ a_i (ln T)^i from data/partition_irwin.csv
    (Irwin 1981, ApJS 45, 621, as distributed with Turbospectrum; made by
    data/make_partition.py). Valid 1000–16000 K."""
    from pathlib import Path

    import numpy as np

    path = Path(__file__).resolve().parents[3] / "data" / "partition_irwin.csv" if path is None else path
    arr = np.loadtxt(path, delimiter=",", skiprows=1, ndmin=2)
    return {(int(r[0]), int(r[1])): tuple(float(x) for x in r[2:8]) for r in arr}
