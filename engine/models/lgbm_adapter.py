"""The LightGBM model behind `logg-engine run lgbm`: presets and the adapter protocol.

lightgbm is imported only inside the methods (CLI start-up and the store never load it).
The binned training Dataset is cached under `<dataset root>/.cache/` keyed by everything
that shapes it, so a scaling grid or a re-run skips the binning pass.

`--workers N` (N > 1) trains the same model data-parallel on N Ray Train workers
(engine.models.lgbm_distributed); N = 1 is the single-process path, unchanged."""

from __future__ import annotations

import hashlib
import json
import resource
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from engine.models.contract import PredictContext, TrainContext

_PAPER = {"n_estimators": 5000, "learning_rate": 0.05, "num_leaves": 63, "max_depth": -1,
          "min_child_samples": 20, "feature_fraction": 0.8, "bagging_fraction": 0.8,
          "bagging_freq": 5, "max_bin": 255, "early_stopping_rounds": 50,
          "metric": ["l2", "l1"], "bin_construct_sample_cnt": 50000, "chunk_rows": 4096,
          "n_jobs": 0, "random_state": 42}
_FAST = {**_PAPER, "n_estimators": 300, "learning_rate": 0.1, "num_leaves": 31,
         "max_bin": 63, "feature_fraction": 0.5, "early_stopping_rounds": 20}


class LGBMAdapter:
    name = "lgbm"
    distributed = True    # `--workers N`: Ray Train LightGBM (engine.models.lgbm_distributed)
    resumes = False
    augments = True
    presets: dict[str, dict[str, Any]] = {"lgbm-paper": _PAPER, "lgbm-fast": _FAST}

    def build(self, params: Mapping[str, Any]) -> Any:
        from engine.models.lgbm import StreamingLGBM

        p = dict(params)
        p["metric"] = tuple(p.get("metric") or ("l2",))
        return StreamingLGBM(**p)

    def train(self, est: Any, ctx: TrainContext) -> Any:
        from engine.models.base import NoisySplitSource

        copies = ctx.augment_copies
        if ctx.workers > 1:
            from engine.models.lgbm_distributed import fit_distributed

            return fit_distributed(est, ctx)
        source = NoisySplitSource(ctx.train, ctx.noise_level, ctx.seed, copies=copies)
        eval_set = None
        if ctx.val is not None:
            eval_set = (ctx.val.noisy(ctx.noise_level), ctx.val.log_g)
        return est.fit(source, eval_set=eval_set, callbacks=ctx.callbacks,
                       should_stop=ctx.should_stop, cache_path=self.cache_path(est, ctx, copies))

    @staticmethod
    def cache_path(est: Any, ctx: TrainContext, copies: int) -> Path | None:
        """`<dataset root>/.cache/lgbm_<key>.bin`; key = hash of the dataset fingerprint,
        the training split and size, the noise level and seed, the copies, the binning
        parameters and the lightgbm version."""
        import lightgbm

        root = ctx.dataset_root
        if root is None:
            return None
        key = {"fingerprint": ctx.dataset_fingerprint,
               "split": ctx.train.name, "rows": int(ctx.train.n_rows),
               "noise_level": float(ctx.noise_level), "seed": int(ctx.seed),
               "copies": int(copies), "dataset_params": est.dataset_params(),
               "lightgbm": lightgbm.__version__}
        digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]
        return Path(root) / ".cache" / f"lgbm_{digest}.bin"

    def predict(self, est: Any, ctx: PredictContext) -> np.ndarray:
        return est.predict(ctx.flux)

    def describe(self, est: Any) -> dict[str, Any]:
        """Model facts for metrics.json `extra`."""
        return {"best_iteration": est.best_iteration_, "cache_hit": est.cache_hit_,
                "stopped": est.stopped_, "workers": int(getattr(est, "workers_", 1)),
                "binned_mb": getattr(est, "binned_mb_", None),
                "val_l2_best": min(est.evals_result_.get("l2", [np.nan])),
                "peak_rss_mb_after_train":
                    resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0}

    def save(self, est: Any, directory: Path) -> None:
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        est.save(directory / "lgbm_model.txt")

    def load(self, directory: Path) -> Any:
        from engine.models.lgbm import StreamingLGBM

        return StreamingLGBM.load(Path(directory) / "lgbm_model.txt")
