"""A small REAL pfsspec-layout dataset with a known signal, written through
engine.io.pfsspec.write_spectra (no physics generator needed).

Signal: pixel j of a spectrum is 1 − depth_j(log g, T_eff) with line depths linear in
log g plus a nonlinear (log g²) term, heteroscedastic errors, and a stored frozen `noisy`
array on the val/test shards (noise_level 1.0, as the real set)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from engine.io.columns import empty_params
from engine.io.dataset import write_manifest
from engine.io.pfsspec import write_spectra


def make_spectra(n: int, n_pixels: int, rng: np.random.Generator, basis: np.ndarray):
    log_g = rng.uniform(1.0, 5.0, n)
    t_eff = rng.uniform(3500.0, 6500.0, n)
    m_h = rng.uniform(-2.0, 0.5, n)
    t = (t_eff - 5000.0) / 1500.0
    g = (log_g - 3.0) / 2.0
    depth = 0.05 * (np.outer(g, basis[0]) + np.outer(g ** 2, basis[1])
                    + np.outer(t, basis[2]) + np.outer(m_h, basis[3]) * 0.5)
    flux = (1.0 - depth).astype(np.float32)
    mag = rng.uniform(20.5, 22.5, n)
    error = (0.02 * 10 ** (0.2 * (mag - 20.5)))[:, None] * (1 + 0.2 * basis[4][None, :])
    error = error.astype(np.float32)
    params = empty_params(n)
    params["log_g"], params["T_eff"], params["M_H"] = log_g, t_eff, m_h
    params["a_M"], params["C_M"], params["mag"] = 0.0, 0.0, mag
    snr_med = np.median(flux / error, axis=1)
    params["snr"] = snr_med
    params["snr_median"] = snr_med
    params["snr_l2"] = np.linalg.norm(flux, axis=1) / np.linalg.norm(error, axis=1)
    return flux, error, params


def make_fake_dataset(root: str | Path, *, train_shards: tuple[int, ...] = (600, 400),
                      n_val: int = 200, n_test: int = 300, n_pixels: int = 256,
                      seed: int = 0, name: str | None = None) -> Path:
    """Write `<root>/{train_<k>_<i>, val_<k>, test_<k>}/dataset.h5` + dataset.json."""
    root = Path(root)
    rng = np.random.default_rng(seed)
    wave = np.linspace(7100.0, 8850.0, n_pixels)
    basis = np.abs(rng.normal(size=(5, n_pixels))) * (rng.random((5, n_pixels)) < 0.3)
    shards: dict[str, int] = {}
    specs = [(f"train_{n}_{i}", n, False) for i, n in enumerate(train_shards)]
    specs += [(f"val_{n_val}", n_val, True), (f"test_{n_test}", n_test, True)]
    for shard, n, frozen in specs:
        flux, error, params = make_spectra(n, n_pixels, rng, basis)
        noisy = (flux + rng.normal(size=flux.shape).astype(np.float32) * error) \
            if frozen else None
        write_spectra(root / shard / "dataset.h5", wave=wave, flux=flux, error=error,
                      params=params, noisy=noisy)
        shards[shard] = n
    write_manifest(root, name=name or root.name, preset=None, seed=seed, noise_level=1.0,
                   shards=shards)
    return root


TOY_LINES = (8183.0, 8195.0, 8498.0, 8542.0, 8662.0, 8806.0, 7700.0, 8000.0, 8300.0, 8700.0)


def toy_analysis_spectra(rng, n, wave):
    """Toy lines whose depths depend on (Teff, [M/H], log g) with bin-dependent log g
    sensitivity (so experts help), errors that follow the flux (so raw error leaks)."""
    teff = rng.uniform(3600, 6150, n)
    mh = rng.uniform(-2.4, 0.7, n)
    logg = rng.uniform(1, 5, n)
    mag = rng.uniform(20.5, 22.5, n)
    t = (teff - 4875) / 1125
    flux = np.ones((n, wave.size))
    for j, c in enumerate(TOY_LINES):
        prof = np.exp(-0.5 * ((wave - c) / 4.0) ** 2)
        depth = 0.3 + 0.1 * np.sin(j + 1) * t + 0.05 * mh \
            + 0.06 * (logg - 3) * (1 + np.cos(j) * np.sign(mh + 1) + 0.5 * t)
        flux -= np.clip(depth, 0, 0.9)[:, None] * prof[None, :]
    scale = 0.08 * 10 ** (0.4 * (mag - 21.5))
    error = scale[:, None] * (0.6 + 0.4 * flux) * (1 + 0.1 * np.sin(wave / 50.0))[None, :]
    snr = np.median(flux / error, axis=1)
    p = pd.DataFrame({"T_eff": teff, "M_H": mh, "log_g": logg, "mag": mag, "snr": snr,
                      "snr_median": snr, "crlb_log_g": (2.5 / snr) ** 2,
                      "crlb_schur": np.full(n, 0.7), "a_M": 0.0, "C_M": 0.0})
    return flux.astype(np.float32), error.astype(np.float32), p


def make_toy_analysis_dataset(root: str | Path) -> Path:
    """The analyses' toy pfsspec dataset: 900 train, 200 val, 300 test rows of 256 pixels
    from `toy_analysis_spectra` (seed 1)."""
    root = Path(root)
    rng = np.random.default_rng(1)
    wave = np.linspace(7100.0, 8850.0, 256)
    shards = {"train_0": 900, "val_1k": 200, "test_1k_0": 300}
    for name, n in shards.items():
        f, e, p = toy_analysis_spectra(rng, n, wave)
        write_spectra(root / name / "dataset.h5", wave=wave, flux=f, error=e, params=p)
    write_manifest(root, name="toy", preset="test", seed=1, noise_level=1.0, shards=shards)
    return root
