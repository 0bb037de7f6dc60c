"""The learnability figure of `logg-engine data calibrate`: the engine's StreamingRidge
(standardised features, α chosen on the val split from a log grid) trained on the train
split at noise 1.0 and scored on the test split's frozen noisy spectra.

Why here and not in engine/generator/calibrate.py with the physics figures: it fits a
model, and the generator sits below the models in the layers (cli → report → analysis →
runs → models → store/io/generator → eval → base; nothing imports upwards), so the CLI
adds this figure to `calibrate()`'s list."""

from __future__ import annotations

import numpy as np

from engine.eval.metrics import r2
from engine.events import Callbacks
from engine.generator.calibrate import Figure
from engine.models.base import NoisySplitSource
from engine.models.ridge import StreamingRidge

# α grid of the calibration check (wider than the runs' PAPER_ALPHAS: small train sets
# of a new dataset may want a small α)
CALIBRATION_ALPHAS: tuple[float, ...] = tuple(float(a) for a in np.logspace(-1, 7, 33))
RESEARCH_R2, TOLERANCE = 0.47, 0.05   # Ridge R² at noise 1.0 in the research


def ridge_figure(dataset, rows: int | None = None, seed: int = 0,
                 callbacks: Callbacks | None = None) -> list[Figure]:
    """Ridge R² at noise 1.0 on the test split (α chosen on the val split)."""
    train = dataset.train(rows) if rows else dataset.train()
    val, test = dataset.split("val"), dataset.split("test")
    yv = val.params["log_g"].to_numpy()
    model = StreamingRidge(alphas=CALIBRATION_ALPHAS).fit(
        NoisySplitSource(train, 1.0, seed), eval_set=(val.noisy(1.0, seed=seed + 1), yv),
        callbacks=callbacks)
    yt = test.params["log_g"].to_numpy()
    score = r2(yt, model.predict(test.noisy(1.0)))
    return [Figure("Ridge R² (noise 1.0)", score, RESEARCH_R2, TOLERANCE,
                   f"{train.n_rows} train rows, α={model.alpha_:.3g}, test {test.name}")]
