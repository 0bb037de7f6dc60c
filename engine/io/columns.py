"""The parameter-table columns: the 35 pfsspec columns (docs/data-format.md, in the
order pfsspec writes them) plus the extra float columns our generator adds.

Why a fixed list: research code reads the table positionally and by name, so files we
write must carry exactly the same columns, in the same order, with the same dtypes."""

from __future__ import annotations

import numpy as np
import pandas as pd

# (name, dtype) in pfsspec order. `interp_param` is a string column ('' = no spline).
PFSSPEC_COLUMNS: tuple[tuple[str, str], ...] = (
    ("id", "int64"),
    ("redshift", "float64"),
    ("redshift_err", "float64"),
    ("exp_count", "int64"),
    ("exp_time", "float64"),
    ("seeing", "float64"),
    ("ext", "float64"),
    ("target_zenith_angle", "float64"),
    ("target_field_angle", "float64"),
    ("moon_zenith_angle", "float64"),
    ("moon_target_angle", "float64"),
    ("moon_phase", "float64"),
    ("snr", "float64"),
    ("mag", "float64"),
    ("fiberid", "float64"),
    ("cont_fit", "float64"),
    ("random_seed", "float64"),
    ("Fe_H", "float64"),
    ("Fe_H_err", "float64"),
    ("M_H", "float64"),
    ("M_H_err", "float64"),
    ("a_M", "float64"),
    ("a_M_err", "float64"),
    ("C_M", "float64"),
    ("C_M_err", "float64"),
    ("O_M", "float64"),
    ("O_M_err", "float64"),
    ("T_eff", "float64"),
    ("T_eff_err", "float64"),
    ("log_g", "float64"),
    ("log_g_err", "float64"),
    ("N_He", "float64"),
    ("v_turb", "float64"),
    ("L_H", "float64"),
    ("interp_param", "str"),
)

PFSSPEC_COLUMN_NAMES: tuple[str, ...] = tuple(name for name, _ in PFSSPEC_COLUMNS)

# Extra float64 columns the logg generator appends after the pfsspec ones.
LOGG_COLUMNS: tuple[str, ...] = ("snr_median", "snr_l2", "crlb_log_g", "crlb_schur")

ALL_COLUMN_NAMES: tuple[str, ...] = PFSSPEC_COLUMN_NAMES + LOGG_COLUMNS


def empty_params(n: int) -> pd.DataFrame:
    """A params table of `n` rows with every pfsspec + logg column: id = 0..n-1,
    exp_count 0, interp_param '', NaN everywhere else (NaN = unknown, like pfsspec)."""
    n = int(n)
    data: dict[str, object] = {}
    for name, dtype in PFSSPEC_COLUMNS:
        if name == "id":
            data[name] = np.arange(n, dtype=np.int64)
        elif dtype == "int64":
            data[name] = np.zeros(n, dtype=np.int64)
        elif dtype == "str":
            data[name] = pd.array([""] * n, dtype="str") if n else pd.array([], dtype="str")
        else:
            data[name] = np.full(n, np.nan, dtype=np.float64)
    for name in LOGG_COLUMNS:
        data[name] = np.full(n, np.nan, dtype=np.float64)
    df = pd.DataFrame(data)
    df.index = pd.Index(np.arange(n, dtype=np.int64))
    return df
