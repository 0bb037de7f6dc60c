"""The runner's view of the ViT (engine.models.contract.ModelAdapter).

Imported lazily by engine.runs.registry as "engine.models.vit.adapter:ViTAdapter"; torch is
imported only when a method runs, so listing models stays fast."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from engine.models.contract import PredictContext, TrainContext

from .presets import VIT_PRESETS


class ViTAdapter:
    """build / train / predict / save / load for SpecViTRegressor."""

    name = "vit"
    presets: dict[str, dict[str, Any]] = VIT_PRESETS
    # run-control keys a --set may add to any preset (example values give their types):
    # stop after N optimiser steps (a short check of the streamed path at 500k), select the
    # epoch on the first N validation stars, cap the resident training set (GB)
    options: dict[str, Any] = {"max_steps": 0, "val_rows": 0, "max_resident_gb": 0.0}
    distributed = True          # --workers N: Ray Train TorchTrainer (distributed.py)
    resumes = True              # a lost/cancelled run's last.pt continues (trainer.py)
    augments = False            # no augment_copies: the trainer draws its training noise

    def build(self, params: Mapping[str, Any]) -> Any:
        from engine.errors import SpecError
        from .estimator import SpecViTRegressor
        known = SpecViTRegressor().get_params()
        unknown = sorted(set(params) - set(known))
        if unknown:
            raise SpecError(f"unknown ViT hyper-parameter(s) {unknown}", key="params",
                            hint=f"known: {', '.join(sorted(known))}")
        return SpecViTRegressor(**params)

    def train(self, est: Any, ctx: TrainContext) -> Any:
        """Fit on ctx.train, select on ctx.val (frozen noisy), checkpoint to
        ctx.checkpoint_dir, resume when ctx.resume. If ctx.should_stop() fired, the last
        checkpoint is written and `est.stopped_` is True: the runner ends the run cancelled.
        With ctx.workers > 1 the same fit runs data-parallel on Ray Train workers."""
        if ctx.workers > 1:
            from .distributed import fit_distributed
            return fit_distributed(est, ctx)
        return est.fit_split(ctx.train, ctx.val, noise_level=ctx.noise_level, seed=ctx.seed,
                             callbacks=ctx.callbacks, checkpoint_dir=ctx.checkpoint_dir,
                             resume=ctx.resume, should_stop=ctx.should_stop,
                             device=ctx.device or None)

    def describe(self, est: Any) -> dict[str, Any]:
        """Run summary for metrics.json `extra.model`."""
        hist = getattr(est, "history_", [])
        return {"n_params": int(est.n_params_), "best_epoch": int(est.best_epoch_),
                "best_val_r2": float(est.best_val_r2_), "epochs_trained": len(hist),
                "device": str(est.device_),
                "samples_per_s": float(hist[-1]["samples_per_s"]) if hist else None,
                "val_seconds_per_epoch": _mean_of(hist, "val_seconds")}

    def predict(self, est: Any, ctx: PredictContext) -> np.ndarray:
        """log g (dex); a multi-target model (`targets=log_g,T_eff,...`) gives its log g
        column here and every label through `predict_targets`."""
        pred = est.predict(ctx.flux)
        return pred if pred.ndim == 1 else pred[:, _logg_column(est)]

    def predict_targets(self, est: Any, ctx: PredictContext) -> dict[str, np.ndarray]:
        return est.predict_targets(ctx.flux)

    def predict_sigma(self, est: Any, ctx: PredictContext) -> np.ndarray | None:
        """σ(log g) in dex from a `loss=beta_nll` head (engine.runs.intervals), else None."""
        sig = est.predict_sigma(ctx.flux)
        return sig if sig is None or sig.ndim == 1 else sig[:, _logg_column(est)]

    def save(self, est: Any, directory: Path) -> None:
        est.save(directory)

    def load(self, directory: Path) -> Any:
        from .estimator import SpecViTRegressor
        return SpecViTRegressor.load(directory)


def _mean_of(hist: list[dict], key: str) -> float | None:
    vals = [float(h[key]) for h in hist if key in h]
    return sum(vals) / len(vals) if vals else None


def _logg_column(est: Any) -> int:
    from engine.errors import SpecError
    names = list(getattr(est, "target_names_", ["log_g"]))
    if "log_g" not in names:
        raise SpecError(f"the ViT was trained on {names} without log_g", key="targets",
                        hint="include log_g, e.g. --set targets=log_g,T_eff,M_H")
    return names.index("log_g")
