"""Convert the atmosnet 1.0.1 "cool" network (C3K/ATLAS12 model atmospheres) into
data/atmosnet_cool.npz, once.

Usage:  pip download --no-deps atmosnet==1.0.1 dill    # then unpack the atmosnet wheel
        python data/make_atmosnet.py path/to/atmosnet/data/atmosnet_c3k_300neurons_cool.pkl

Why: the package stores its weights as plain numpy arrays inside a dill pickle, and its
module imports `scipy.integrate.trapz`, which current scipy removed; reading the arrays once
avoids a runtime dependency on dill and on the package's code. Only `dill` is needed to run
this script (it need not be installed: a path to the dill wheel on PYTHONPATH works).

The pickle is a list of 8 networks, one per column of a Kurucz "READ DECK6" table
(atmosnet.models.Atmosphere: RHOX, T, P, XNE, ABROSS, ACCRAD, VTURB, FLXCNV). Each maps
labels (TEFF, LOGG, FE_H, ALPHA_FE), scaled as (x − x_min)/(x_max − x_min) − 0.5, through
two leaky-ReLU hidden layers of 300 neurons to ln(value + 1e-16) at 80 depths. We keep
the first five columns (everything the formal solution and its checks need) in float32:
w0 (5, 300, 4), b0 (5, 300), w1 (5, 300, 300), b1 (5, 300), w2 (5, 80, 300), b2 (5, 80),
x_min (4,), x_max (4,), ranges (4, 2) (the training-label box)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

COLUMNS = ("RHOX", "T", "P", "XNE", "ABROSS")
OUT = Path(__file__).resolve().parent / "atmosnet_cool.npz"


def main(pkl: str, out: Path = OUT) -> None:
    import dill

    with open(pkl, "rb") as fh:
        nets = dill.load(fh)
    if [n["column"] for n in nets[:len(COLUMNS)]] != list(range(len(COLUMNS))):
        raise ValueError("unexpected column order in the atmosnet pickle")
    if list(nets[0]["labels"]) != ["TEFF", "LOGG", "FE_H", "ALPHA_FE"]:
        raise ValueError(f"unexpected labels {nets[0]['labels']}")
    stack = lambda key: np.stack([np.asarray(n[key]) for n in nets[:len(COLUMNS)]]).astype(np.float32)
    for n in nets[1:len(COLUMNS)]:
        if not (np.array_equal(n["x_min"], nets[0]["x_min"]) and np.array_equal(n["x_max"], nets[0]["x_max"])):
            raise ValueError("columns use different label scalings")
    np.savez(out, columns=np.array(COLUMNS), w0=stack("w_array_0"), b0=stack("b_array_0"),
             w1=stack("w_array_1"), b1=stack("b_array_1"), w2=stack("w_array_2"),
             b2=stack("b_array_2"), x_min=np.asarray(nets[0]["x_min"], np.float64),
             x_max=np.asarray(nets[0]["x_max"], np.float64),
             ranges=np.asarray(nets[0]["ranges"], np.float64))
    print(f"wrote {out} ({out.stat().st_size / 1e6:.2f} MB)")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(sys.argv[1])
