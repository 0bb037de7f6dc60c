"""Calibration figures of a generated dataset against the research targets
(docs/generator.md, Calibration): each figure is returned beside its
target so `logg-engine data calibrate` can print one table.

* SNR: L2-SNR bin fractions (train split), pixel-mean SNR (a row sample), the `snr`
  column median (test split).
* Per magnitude (a fixed-mag batch drawn on the fly, θ from the prior): median per-pixel
  SNR, median CRLB σ(log g) marginalised over T_eff and [M/H] (3-D: α, C known), the 5-D
  R²_max median with Var = 1.6667, and the Schur ratios. One Jacobian per θ serves every
  magnitude (J does not depend on the noise).
* Learnability (Ridge R² at noise 1.0) is a model fit, so it lives above the generator:
  engine.models.ridge_calibration.ridge_figure (the CLI adds it to this list)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from engine.events import Callbacks, emit

MAGS = (20.0, 21.5, 22.0, 22.5)
# research medians per magnitude (ORIGINAL_SYSTEM.md §6.3; 18 and 23 only in the grid
# protocol's magnitudes, calibrate_grid.GRID_MAGS)
TARGET_SNR_MED = {18.0: 87.4, 20.0: 24.0, 21.5: 7.1, 22.0: 4.6, 22.5: 3.0, 23.0: 1.9}
TARGET_SIGMA_3D = {18.0: 0.0328, 20.0: 0.12, 21.5: 0.42, 22.0: 0.66, 22.5: 1.03, 23.0: 1.6133}
TARGET_R2MAX_5D = {18.0: 0.9993, 20.0: 0.9892, 21.5: 0.8742, 22.0: 0.6983, 22.5: 0.2647,
                   23.0: 0.0}
TARGET_SCHUR_3D = {18.0: 0.6641, 20.0: 0.6842, 21.5: 0.6906, 22.0: 0.6921, 22.5: 0.6922,
                   23.0: 0.6923}
TARGET_SCHUR_5D = {18.0: 0.5505, 20.0: 0.5696, 21.5: 0.5778, 22.0: 0.5791, 22.5: 0.5801,
                   23.0: 0.5806}
TARGET_L2_BINS = (29.0, 38.0, 30.0, 3.0)
VAR_GRID = 1.6667   # population variance of the 9 BOSZ log g nodes (docs/analyses.md, `ceiling`)


@dataclass(frozen=True)
class Figure:
    name: str
    value: float
    target: float | None
    tolerance: float | None = None
    note: str = ""

    def ok(self) -> bool | None:
        if self.target is None or self.tolerance is None or not np.isfinite(self.value):
            return None
        return bool(abs(self.value - self.target) <= self.tolerance)

    def to_dict(self) -> dict:
        return {"name": self.name, "value": float(self.value), "target": self.target,
                "tolerance": self.tolerance, "ok": self.ok(), "note": self.note}


def snr_figures(dataset, sample_rows: int = 2000) -> list[Figure]:
    train = dataset.train()
    l2 = train.params["snr_l2"].to_numpy()
    edges = [(-np.inf, 2), (2, 4), (4, 7), (7, np.inf)]
    labels = ("≤2", "2–4", "4–7", ">7")
    out = [Figure(f"L2-SNR fraction {lab} (%)", 100.0 * np.mean((l2 > lo) & (l2 <= hi)), t, 3.0,
                  "train split, ‖flux‖/‖error‖")
           for (lo, hi), lab, t in zip(edges, labels, TARGET_L2_BINS)]
    out.append(Figure("L2-SNR median", float(np.median(l2)), 2.9, 0.3, "research 1M: 2.93"))
    n = min(sample_rows, train.n_rows)
    _, _, first = next(iter(train.iter_chunks(("flux", "error"), n)))
    flux, err = first["flux"][:n], first["error"][:n]
    pm = np.mean(flux / err, axis=1)
    out.append(Figure("pixel-mean SNR mean", float(pm.mean()), 7.0, 0.7, f"{n} train rows"))
    out.append(Figure("pixel-mean SNR sd", float(pm.std()), 3.4, 0.7, f"{n} train rows"))
    test = dataset.split("test")
    out.append(Figure("snr column median (test)", float(np.median(test.params["snr"])), 8.21,
                      1.0, f"{test.name}, pfsspec 0.95-quantile estimator; research test_10k"))
    return out


PER_MAG_N = 192   # prior draws per magnitude: 24 gave medians off by up to 0.37 in R²_max


def median_se(x: np.ndarray, seed: int = 0, draws: int = 400) -> float:
    """Bootstrap standard error of the median of x (NaNs dropped): how far the figure's
    median may move with another sample of the same size (a median over prior draws that
    span decades in σ_CRLB is a noisy figure at a few dozen draws)."""
    x = np.asarray(x, np.float64)
    x = x[np.isfinite(x)]
    if len(x) < 2:
        return float("nan")
    rng = np.random.default_rng(seed)
    meds = np.median(x[rng.integers(0, len(x), (draws, len(x)))], axis=1)
    return float(np.std(meds))


def per_mag_figures(n: int = PER_MAG_N, seed: int = 0, callbacks: Callbacks | None = None,
                    physics: str = "me", device: str = "cpu") -> list[Figure]:
    """Fixed-magnitude batch: SNR and CRLB figures at mags 20/21.5/22/22.5 (each note
    gives the median's bootstrap standard error over the n draws). `device`: where the
    Jacobians are computed (engine.devices)."""
    import torch

    from engine.generator import grids
    from engine.generator.fisher import crlb_from_fisher, fisher_matrix, jacobian
    from engine.generator.noise import NoiseConfig, draw_k, error_from_flux
    from engine.generator.priors import sample_labels

    rng = np.random.default_rng(seed)
    theta, _ = sample_labels(rng, n)
    k = draw_k(rng, n, NoiseConfig())
    wave = grids.wave()
    from engine.generator.physics import fisher_model

    model = fisher_model(physics, device)
    mus, jacs = [], []
    for s in range(0, n, 16):
        mu, jac = jacobian(theta[s:s + 16], model)
        mus.append(mu)
        jacs.append(jac)
        emit(callbacks, "progress", done=min(n, s + 16), total=n, step="jacobian")
    mu, jac = torch.cat(mus).cpu(), torch.cat(jacs).cpu()
    out = []
    for mag in MAGS:
        err = error_from_flux(mu.numpy(), wave, np.full(n, mag), k)
        snr_med = float(np.median(mu.numpy() / err))
        fis = fisher_matrix(jac, torch.as_tensor(err))
        r3 = crlb_from_fisher(fis, (0, 1, 2))
        r5 = crlb_from_fisher(fis)
        r2 = 1.0 - np.minimum(r5.crlb_log_g, VAR_GRID) / VAR_GRID
        s3 = np.sqrt(r3.crlb_log_g)

        def se(x: np.ndarray) -> str:
            return f"± {median_se(x, seed):.3g} (bootstrap SE, {n} draws)"

        out += [
            Figure(f"mag {mag:g}: median per-pixel SNR", snr_med, TARGET_SNR_MED[mag],
                   0.15 * TARGET_SNR_MED[mag], "median over spectra and pixels"),
            Figure(f"mag {mag:g}: σ_CRLB(log g) 3-D median", float(np.nanmedian(s3)),
                   TARGET_SIGMA_3D[mag], 0.2 * TARGET_SIGMA_3D[mag],
                   f"marginal over T_eff, [M/H]; {se(s3)}"),
            Figure(f"mag {mag:g}: R²_max 5-D median", float(np.nanmedian(r2)), TARGET_R2MAX_5D[mag],
                   0.05, f"Var = 1.6667; {se(r2)}"),
            Figure(f"mag {mag:g}: Schur 3-D median", float(np.nanmedian(r3.schur)), 0.69, 0.1,
                   f"research 3-D 0.69; {se(r3.schur)}"),
            Figure(f"mag {mag:g}: Schur 5-D median", float(np.nanmedian(r5.schur)), 0.58, 0.1,
                   f"research 5-D 0.58; {se(r5.schur)}"),
        ]
        if mag == 21.5:
            out += bin_figures(theta, r2, mag)
    return out


def bin_figures(theta: np.ndarray, r2: np.ndarray, mag: float) -> list[Figure]:
    """5-D R²_max median per T_eff × [M/H] bin (no target: it shows whether the metal-poor
    bins carry log g information; counts in the note)."""
    from engine.eval.bins import assign_teff_mh, teff_mh_bounds

    b = assign_teff_mh(theta[:, 0], theta[:, 2])
    out = []
    for k in range(9):
        sel = b == k
        (t0, t1), (m0, m1) = teff_mh_bounds(k)
        val = float(np.nanmedian(r2[sel])) if sel.any() else float("nan")
        out.append(Figure(f"mag {mag:g}: R²_max 5-D, T_eff {t0:g}–{t1:g}, [M/H] {m0:g}–{m1:g}",
                          val, None, None, f"{int(sel.sum())} spectra"))
    return out


def calibrate(dataset, *, per_mag_n: int = PER_MAG_N, seed: int = 0,
              callbacks: Callbacks | None = None, device: str = "cpu") -> list[Figure]:
    """Every physics calibration figure for `dataset` (an engine.io.dataset.Dataset); the
    Ridge learnability figure is engine.models.ridge_calibration.ridge_figure."""
    figs = snr_figures(dataset)
    from engine.generator.physics import physics_of_version

    physics = physics_of_version((dataset.manifest or {}).get("generator_version"))
    figs += per_mag_figures(per_mag_n, seed, callbacks, physics, device)
    return figs
