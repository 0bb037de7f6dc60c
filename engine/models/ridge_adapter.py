"""The Ridge model behind `logg-engine run ridge`: presets and the adapter protocol.

`ridge-paper` scores the research's α path (1e2…1e8, half-decades) on the validation split
and keeps the best; `ridge-fixed` is the canonical 1M model's α = 1e5."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from engine.atomic import atomic_path, write_json
from engine.models.base import NoisySplitSource
from engine.models.contract import PredictContext, TrainContext
from engine.models.ridge import PAPER_ALPHAS, StreamingRidge

_COMMON = {"alpha": 1e5, "standardize": True, "chunk_rows": 4096}


class RidgeAdapter:
    name = "ridge"
    distributed = False
    resumes = False
    augments = True
    presets: dict[str, dict[str, Any]] = {
        "ridge-paper": {**_COMMON, "alphas": list(PAPER_ALPHAS)},
        "ridge-fixed": {**_COMMON, "alphas": []},
    }

    def build(self, params: Mapping[str, Any]) -> StreamingRidge:
        p = dict(params)
        return StreamingRidge(alpha=float(p["alpha"]),
                              alphas=list(p.get("alphas") or []) or None,
                              standardize=bool(p["standardize"]),
                              chunk_rows=int(p["chunk_rows"]))

    def train(self, est: StreamingRidge, ctx: TrainContext) -> StreamingRidge:
        """One seeded noise realisation of the training split (K copies optional); α
        chosen on the frozen noisy validation split."""
        source = NoisySplitSource(ctx.train, ctx.noise_level, ctx.seed,
                                  copies=ctx.augment_copies)
        eval_set = None
        if ctx.val is not None:
            eval_set = (ctx.val.noisy(ctx.noise_level), ctx.val.log_g)
        return est.fit(source, eval_set=eval_set, callbacks=ctx.callbacks,
                       should_stop=ctx.should_stop)

    def predict(self, est: StreamingRidge, ctx: PredictContext) -> np.ndarray:
        return est.predict(ctx.flux)

    def describe(self, est: StreamingRidge) -> dict[str, Any]:
        """Model facts for metrics.json `extra`."""
        return {"alpha": est.alpha_, "alpha_curve": est.alpha_curve_,
                "n_train_rows": est.n_samples_seen_}

    def save(self, est: StreamingRidge, directory: Path) -> None:
        """Plain arrays (npz) + JSON: loadable anywhere without pickle."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        with atomic_path(directory / "ridge.npz") as tmp, open(tmp, "wb") as fh:
            np.savez(fh, mean=est.mean_, scale=est.scale_, var=est.var_, coef=est.coef_,
                     intercept=np.array([est.intercept_]))
        meta = {"alpha": est.alpha_, "alpha_curve": est.alpha_curve_,
                "params": {"alpha": est.alpha, "alphas": est.alphas,
                           "standardize": est.standardize, "chunk_rows": est.chunk_rows},
                "n_samples_seen": est.n_samples_seen_}
        write_json(directory / "ridge.json", meta, indent=1, safe=False)

    def load(self, directory: Path) -> StreamingRidge:
        directory = Path(directory)
        meta = json.loads((directory / "ridge.json").read_text())
        est = StreamingRidge(**meta["params"])
        with np.load(directory / "ridge.npz") as z:
            est.mean_, est.scale_, est.var_ = z["mean"], z["scale"], z["var"]
            est.coef_, est.intercept_ = z["coef"], float(z["intercept"][0])
        est.alpha_, est.alpha_curve_ = meta["alpha"], meta["alpha_curve"]
        est.n_samples_seen_ = meta["n_samples_seen"]
        est.n_features_in_ = len(est.coef_)
        return est
