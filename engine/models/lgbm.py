"""LightGBM on raw noisy flux, fed from chunks through `lgb.Sequence`.

The research's gradient-boosted trees (lightgbm itself, raw flux, never standardised).
The training rows come from a ChunkSource (the HDF5 split plus one seeded noise draw), so
LightGBM's binned Dataset is built without the float matrix ever being in RAM; the binned
Dataset is cached with ``save_binary`` (tmp + rename) and reused when its key matches.
Per-iteration validation metrics go to the callbacks; ``should_stop`` ends training
cleanly through LightGBM's own early-stop exception.

Import boundary: this module imports lightgbm at module scope; only the adapter imports it,
and only inside functions.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import lightgbm as lgb
import numpy as np

from engine.atomic import atomic_path
from engine.events import Callbacks, emit
from engine.models.base import ChunkSource, as_source


class ChunkSequence(lgb.Sequence):
    """Random-but-monotonic row access over a ChunkSource, as LightGBM reads it: a
    sampling pass (single rows, increasing) then a push pass (batches in order). One
    decoded block is kept; going backwards restarts the chunk iterator. Rows come out
    float64 (what LightGBM's row pushing expects)."""

    def __init__(self, source: ChunkSource, batch_size: int = 4096) -> None:
        self.source = source
        self.batch_size = int(batch_size)
        self._iter = None
        self._block: np.ndarray | None = None
        self._block_start = 0
        self._next_start = 0

    def __len__(self) -> int:
        return int(self.source.n_rows)

    def __getitem__(self, idx: int | slice) -> np.ndarray:
        if isinstance(idx, slice):
            start, stop, step = idx.indices(len(self))
            return self._rows(start, stop)[::step]
        i = int(idx) + (len(self) if int(idx) < 0 else 0)
        if not 0 <= i < len(self):
            raise IndexError(i)
        block = self._block_with(i)
        return block[i - self._block_start].copy()

    def _rows(self, start: int, stop: int) -> np.ndarray:
        parts, i = [], start
        while i < stop:
            block = self._block_with(i)
            end = min(stop, self._block_start + len(block))
            parts.append(block[i - self._block_start:end - self._block_start])
            i = end
        if not parts:
            return np.zeros((0, self.source.n_features))
        return parts[0].copy() if len(parts) == 1 else np.concatenate(parts)

    def _block_with(self, i: int) -> np.ndarray:
        end = self._block_start + len(self._block) if self._block is not None else -1
        if self._block is not None and self._block_start <= i < end:
            return self._block
        if self._iter is None or i < self._block_start:
            self._iter = iter(self.source.chunks(self.batch_size))
            self._block, self._block_start, self._next_start = None, 0, 0
        while True:
            block = next(self._iter)
            self._block_start, self._next_start = self._next_start, self._next_start + len(block)
            if i < self._next_start:
                self._block = np.asarray(block, dtype=np.float64)
                return self._block


class StreamingLGBM:
    """sklearn-style LightGBM regressor (log g in dex) trained from a ChunkSource or
    arrays. Hyper-parameters are LightGBM's, stored as given; run-time plumbing
    (callbacks, should_stop, the binned-Dataset cache path) goes to ``fit``.

    Learned: ``booster_``, ``best_iteration_``, ``evals_result_`` ({metric: [values]}
    on the validation set), ``n_features_in_``, ``cache_hit_`` (the binned Dataset came
    from the cache), ``stopped_`` (ended by should_stop).
    """

    def __init__(self, n_estimators: int = 5000, learning_rate: float = 0.05,
                 num_leaves: int = 63, max_depth: int = -1, min_child_samples: int = 20,
                 feature_fraction: float = 0.8, bagging_fraction: float = 0.8,
                 bagging_freq: int = 5, max_bin: int = 255,
                 early_stopping_rounds: int = 50, metric: Sequence[str] = ("l2", "l1"),
                 bin_construct_sample_cnt: int = 50000, chunk_rows: int = 4096,
                 n_jobs: int = 0, random_state: int = 42) -> None:
        self.n_estimators = n_estimators
        self.learning_rate = learning_rate
        self.num_leaves = num_leaves
        self.max_depth = max_depth
        self.min_child_samples = min_child_samples
        self.feature_fraction = feature_fraction
        self.bagging_fraction = bagging_fraction
        self.bagging_freq = bagging_freq
        self.max_bin = max_bin
        self.early_stopping_rounds = early_stopping_rounds
        self.metric = metric
        self.bin_construct_sample_cnt = bin_construct_sample_cnt
        self.chunk_rows = chunk_rows
        self.n_jobs = n_jobs
        self.random_state = random_state

    # ------------------------------------------------------------ parameters
    def dataset_params(self) -> dict[str, Any]:
        """The parameters that shape the binned Dataset (part of its cache key).
        feature_pre_filter is off so the bins do not depend on min_child_samples."""
        return {"max_bin": int(self.max_bin), "verbose": -1,
                "bin_construct_sample_cnt": int(self.bin_construct_sample_cnt),
                "feature_pre_filter": False, "data_random_seed": int(self.random_state)}

    def booster_params(self) -> dict[str, Any]:
        return {"objective": "regression", "metric": list(self.metric),
                "learning_rate": float(self.learning_rate), "num_leaves": int(self.num_leaves),
                "max_depth": int(self.max_depth),
                "min_data_in_leaf": int(self.min_child_samples),
                "feature_fraction": float(self.feature_fraction),
                "bagging_fraction": float(self.bagging_fraction),
                "bagging_freq": int(self.bagging_freq), "num_threads": int(self.n_jobs),
                "seed": int(self.random_state),
                # Column-wise histograms, always. Left to choose, LightGBM times both
                # layouts at train start and for that builds a row-wise copy of the whole
                # binned matrix: a transient +1.8 GB at 500k × 4096 (6.9 GB peak against a
                # 5.0 GB plateau, bench/results/study_scale.json), and a choice that can
                # differ between two runs of the same config. With 4096 features col-wise
                # is what it picked anyway.
                "force_col_wise": True, **self.dataset_params()}

    # ------------------------------------------------------------------ fit
    def fit(self, X: Any, y: Any = None, *, eval_set: Any = None,
            callbacks: Callbacks | None = None,
            should_stop: Callable[[], bool] | None = None,
            cache_path: str | Path | None = None) -> StreamingLGBM:
        """Train; ``eval_set`` = (X_val, y_val) drives early stopping and the metric
        history. ``cache_path``: where the binned training Dataset is saved / reused."""
        source = as_source(X, y)
        self.n_features_in_ = int(source.n_features)
        train, self.cache_hit_ = self._train_dataset(source, cache_path, callbacks)
        # the binned Dataset's size on disk (save_binary), the memory figure to hold the
        # run's peak RSS against (bench/results/, issue 12); None without a cache path
        self.binned_mb_ = (Path(cache_path).stat().st_size / 2**20
                           if cache_path is not None and Path(cache_path).is_file() else None)
        valid_sets, names = [], []
        if eval_set is not None:
            Xv, yv = eval_set
            valid_sets.append(lgb.Dataset(np.asarray(Xv, dtype=np.float32),
                                          label=np.asarray(yv, dtype=np.float64),
                                          reference=train, params=self.dataset_params()))
            names.append("val")
        self.evals_result_: dict[str, list[float]] = {}
        self.stopped_ = False
        cbs = [self._report(callbacks, should_stop)]
        if valid_sets and self.early_stopping_rounds:
            cbs.append(lgb.early_stopping(int(self.early_stopping_rounds),
                                          first_metric_only=True, verbose=False))
        emit(callbacks, "start", total=int(self.n_estimators), unit="trees", what="lgbm")
        self.booster_ = lgb.train(self.booster_params(), train,
                                  num_boost_round=int(self.n_estimators),
                                  valid_sets=valid_sets, valid_names=names, callbacks=cbs)
        best = int(self.booster_.best_iteration or 0)
        self.best_iteration_ = best if best > 0 else int(self.booster_.current_iteration())
        return self

    def _train_dataset(self, source: ChunkSource, cache_path: str | Path | None,
                       callbacks: Callbacks | None) -> tuple[lgb.Dataset, bool]:
        """The binned training Dataset: loaded from ``cache_path`` when present, else
        built from the chunks (LightGBM samples ≤ bin_construct_sample_cnt rows for the
        bin edges) and saved there atomically."""
        label = np.asarray(source.labels(), dtype=np.float64)
        if cache_path is not None and Path(cache_path).is_file():
            emit(callbacks, "log", message=f"lgbm: binned dataset from cache {cache_path}")
            ds = lgb.Dataset(str(cache_path), params=self.dataset_params())
            ds.construct()
            if ds.num_data() == len(label):
                return ds, True
        emit(callbacks, "log", message=f"lgbm: binning {source.n_rows} rows")
        ds = lgb.Dataset(ChunkSequence(source, int(self.chunk_rows)), label=label,
                         params=self.dataset_params(), free_raw_data=True)
        ds.construct()
        if cache_path is not None:
            with atomic_path(cache_path) as tmp:
                ds.save_binary(str(tmp))
        return ds, False

    def _report(self, callbacks: Callbacks | None,
                should_stop: Callable[[], bool] | None) -> Callable[[Any], None]:
        """LightGBM callback: validation metrics → events + history; should_stop → end
        training through EarlyStopException (LightGBM keeps the trees so far)."""
        total = int(self.n_estimators)

        def _cb(env: Any) -> None:
            step = env.iteration + 1
            fields = {}
            for _data, name, value, _hib in env.evaluation_result_list or ():
                self.evals_result_.setdefault(name, []).append(float(value))
                fields[f"val_{name}"] = float(value)
                emit(callbacks, "metric", step=step, name=f"val_{name}", value=float(value),
                     split="val")
            emit(callbacks, "progress", done=step, total=total, **fields)
            if should_stop is not None and should_stop():
                self.stopped_ = True
                best = env.iteration
                raise lgb.callback.EarlyStopException(best, env.evaluation_result_list or [])

        # before LightGBM's early stopping (order 30), which raises on the last round:
        # so the last tree's metrics and progress (done == total) are reported too
        _cb.order = 20
        return _cb

    # -------------------------------------------------------------- predict
    def predict(self, X: np.ndarray) -> np.ndarray:
        """log g (dex) from raw noisy flux, using the best iteration."""
        return self.booster_.predict(np.asarray(X), num_iteration=self.best_iteration_)

    def save(self, path: str | Path) -> None:
        """LightGBM's text model (no pickle), truncated at the best iteration, written
        to a temporary name then renamed."""
        with atomic_path(path) as tmp:
            self.booster_.save_model(str(tmp), num_iteration=self.best_iteration_)

    @classmethod
    def load(cls, path: str | Path, **params: Any) -> StreamingLGBM:
        est = cls(**params)
        est.booster_ = lgb.Booster(model_file=str(path))
        est.best_iteration_ = int(est.booster_.current_iteration())
        est.n_features_in_ = int(est.booster_.num_feature())
        return est
