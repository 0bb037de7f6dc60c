"""LightGBM trained data-parallel over N Ray Train workers (`logg-engine run lgbm --workers N`).

Why this shape:
- Each worker reads its own contiguous row shard of the run's training matrix straight
  from the dataset files (`ShardSource`), with the SAME seeded noise the single-process
  run draws for those rows: the noise is a function of (seed + copy, stream, global row)
  (engine.io.seeded_noise), so the shards concatenated in rank order are exactly the
  single-process training matrix (tests/test_lgbm_distributed.py checks it bit for bit).
  No ray.data, no float matrix shipped through the object store.
- Bin edges: every worker builds the same reference Dataset from the rows LightGBM itself
  samples from the WHOLE training matrix (`shared_bins`: LightGBM's own sample indices,
  only those rows read), and bins its shard against it. So the bins are exactly the
  single-process bins, whatever the number of workers. (LightGBM's native distributed
  binning would find each feature's edges on one worker from that worker's rows only:
  cheaper by one sample read, but the model would then depend on the worker count; on
  the 1k-row tiny set it moved test R² from 0.20 to 0.15.)
- `tree_learner="data_parallel"` with `pre_partition=True`: every worker keeps all 4096
  features of its rows and the workers sum their gradient histograms for each split, so
  all workers grow the same tree, the full-data tree. `voting` (PV-tree) exchanges only
  the top-k features' histograms: approximate splits, meant for very many features over
  slow networks, nothing to gain at 4096 pixels. `feature_parallel` needs every worker to
  hold every row, which is what distributing is meant to avoid.
- Result: with bagging off (bagging_fraction=1 or bagging_freq=0) the model is
  bit-identical to the single-process one (same bins, same features per tree; the
  histograms are double sums of float32 gradients, exact in any order). With bagging on,
  each worker draws its bag from its own rows, so the trees differ like another seed's
  (same test R² within noise). The single-process binned-Dataset cache is not used.
- Early stopping: every worker evaluates the same validation matrix (the frozen val noise)
  with the same model, so every worker stops at the same iteration by itself.
- Cancel: rank 0 reads the run's STOP file (engine.models.ray_train) and broadcasts the
  decision through `ray.train.collective`, so all workers leave `lightgbm.train` at the
  same iteration (one worker leaving alone would hang the others in the next allreduce).
  The check runs about every CHECK_S seconds, on iterations rank 0 announces.
- Rank 0 writes the progress events into the run's events.jsonl (progress bars, TUI) and
  the model text + a small JSON of facts into the run's Ray Train folder; the driver loads
  them back into a `StreamingLGBM`, so the runner predicts, saves and describes as usual.

Import boundary: lightgbm and ray are imported inside functions (the adapter imports this
module only for `--workers > 1`)."""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from engine.errors import EngineError, RunError, SpecError
from engine.events import Callbacks, emit
from engine.models.base import TrainingCancelled
from engine.models.contract import TrainContext

MODEL_FILE = "lgbm_rank0_model.txt"
META_FILE = "lgbm_rank0.json"
CHECK_S = 1.0   # how often (seconds of training) the workers agree on "stop now?"


# ---------------------------------------------------------------------------- shards
def shard_range(n_rows: int, workers: int, rank: int) -> tuple[int, int]:
    """Rows [lo, hi) of worker `rank`: contiguous, sizes differing by at most one."""
    if not 0 <= rank < workers:
        raise ValueError(f"rank {rank} outside 0..{workers - 1}")
    return n_rows * rank // workers, n_rows * (rank + 1) // workers


class ShardSource:
    """A ChunkSource over global rows [start, stop) of a run's training matrix: the split's
    rows, `copies` times (copy k noised with seed + k), as `NoisySplitSource` lays them out.
    The noise of a row depends on its global index only, so a shard's rows equal the same
    rows of the single-process matrix whatever the shard boundaries or chunk size."""

    def __init__(self, split: Any, noise_level: float, seed: int, copies: int,
                 start: int, stop: int, label: str = "log_g") -> None:
        n = int(split.n_rows)
        if not 0 <= start <= stop <= n * copies:
            raise ValueError(f"rows [{start}, {stop}) outside the {n * copies}-row matrix")
        self.split = split
        self.noise_level = float(noise_level)
        self.seed = int(seed)
        self.copies = int(copies)
        self.label = label
        # (copy k, split rows [a, b)) pieces of the global range
        self.pieces = [(k, max(start, k * n) - k * n, min(stop, (k + 1) * n) - k * n)
                       for k in range(int(copies))
                       if max(start, k * n) < min(stop, (k + 1) * n)]
        self.n_rows = int(stop - start)
        self.n_features = int(split.n_pixels)

    def labels(self) -> np.ndarray:
        y = np.asarray(self.split.params[self.label], dtype=np.float64)
        parts = [y[a:b] for _k, a, b in self.pieces]
        return np.concatenate(parts) if parts else np.zeros(0)

    def chunks(self, chunk_rows: int) -> Iterator[np.ndarray]:
        from engine.io.seeded_noise import add_noise, stream_id

        stream = stream_id(self.split.stream)
        for k, a, b in self.pieces:
            for s, _e, block in self.split.iter_chunks(("flux", "error"), chunk_rows,
                                                       start=a, stop=b):
                yield add_noise(block["flux"], block["error"], self.noise_level,
                                seed=self.seed + k, stream=stream, start=s)


def bin_sample_indices(n_rows: int, dataset_params: dict[str, Any]) -> np.ndarray:
    """The rows LightGBM itself samples for the bin edges of an `n_rows`-row Dataset with
    these parameters (all rows when n_rows ≤ bin_construct_sample_cnt), sorted.
    Uses lightgbm's `Dataset._create_sample_indices` (the streaming-Dataset helper the
    Sequence path calls; lightgbm ≥ 4.0)."""
    import lightgbm as lgb

    probe = lgb.Dataset(np.zeros((1, 1)), params=dict(dataset_params))
    return np.sort(np.asarray(probe._create_sample_indices(total_nrow=int(n_rows)),
                              dtype=np.int64))


def matrix_rows(split: Any, noise_level: float, seed: int, copies: int,
                rows: np.ndarray) -> np.ndarray:
    """Global rows `rows` (sorted) of the run's training matrix, float32, reading only
    those rows and drawing each noise block once. Same float32 operations in the same
    order as engine.io.seeded_noise.add_noise, so the values are bit-identical to the matrix's."""
    from engine.io.seeded_noise import BLOCK_ROWS, block_noise, stream_id

    rows = np.asarray(rows, dtype=np.int64)
    n, width = int(split.n_rows), int(split.n_pixels)
    if len(rows) and (rows[0] < 0 or rows[-1] >= n * copies or np.any(np.diff(rows) <= 0)):
        raise ValueError("rows must be sorted, distinct and inside the matrix")
    out = np.empty((len(rows), width), dtype=np.float32)
    copy, local = rows // n, rows % n
    block = local // BLOCK_ROWS
    cut = np.flatnonzero((np.diff(local) != 1) | (np.diff(block) != 0) | (np.diff(copy) != 0))
    starts = np.concatenate([[0], cut + 1]) if len(rows) else np.zeros(0, dtype=np.int64)
    stops = np.concatenate([cut + 1, [len(rows)]]) if len(rows) else starts
    stream, level = stream_id(split.stream), np.float32(noise_level)
    key, eps_block = None, None
    for i0, i1 in zip(starts, stops):
        k, lo, b = int(copy[i0]), int(local[i0]), int(block[i0])
        hi = lo + (i1 - i0)
        flux = split.read("flux", lo, hi)
        if float(noise_level) == 0:
            out[i0:i1] = flux
            continue
        if key != (k, b):
            key, eps_block = (k, b), block_noise(seed + k, stream, b, width)
        eps = eps_block[lo - b * BLOCK_ROWS:hi - b * BLOCK_ROWS].copy()
        eps *= split.read("error", lo, hi)
        eps *= level
        eps += flux
        out[i0:i1] = eps
    return out


def shared_bins(split: Any, noise_level: float, seed: int, copies: int,
                dataset_params: dict[str, Any], callbacks: Callbacks = ()) -> Any:
    """A LightGBM reference Dataset holding the bin edges the single-process run finds:
    built from the very rows LightGBM samples from the whole training matrix
    (`bin_sample_indices`), read directly (`matrix_rows`). Every worker builds the same
    one, so the bins do not depend on the number of workers or on the shards, and
    `Dataset(reference=...)` gives each shard exactly those bins. Cost per worker:
    reading ≤ bin_construct_sample_cnt rows, whatever the training size."""
    import lightgbm as lgb

    total = int(split.n_rows) * int(copies)
    rows = bin_sample_indices(total, dataset_params)
    emit(callbacks, "log", message=f"lgbm: bin edges from {len(rows)} sampled rows")
    sample = matrix_rows(split, noise_level, seed, copies, rows)
    # len(rows) ≤ bin_construct_sample_cnt, so LightGBM bins from every sampled row
    params = {**dataset_params, "pre_partition": True}
    return lgb.Dataset(sample, params=params, free_raw_data=True).construct()


# ------------------------------------------------------------------------ driver side
def fit_distributed(est: Any, ctx: TrainContext) -> Any:
    """Train `est` (a StreamingLGBM, hyper-parameters only) on `ctx.workers` Ray Train
    workers (on `ctx.augment_copies` noise copies of the training rows) and fill it with
    the learned booster and facts; returns `est`."""
    workers, copies = int(ctx.workers), int(ctx.augment_copies)
    total = int(ctx.train.n_rows) * int(copies)
    if total < workers:
        raise SpecError(f"{workers} workers for {total} training rows", key="workers",
                        hint="use fewer --workers than training rows")
    if ctx.dataset_root is None:
        raise SpecError("distributed LightGBM needs the dataset folder", key="dataset",
                        hint="run it through `logg-engine run` (the runner sets it)")
    from engine.models.ray_train import (fit_until_stopped, original_error, storage_path,
                                         train_cluster, wait_for)

    out_dir = Path(storage_path(ctx.run_dir))
    for name in (MODEL_FILE, META_FILE):
        (out_dir / name).unlink(missing_ok=True)   # never load a previous attempt's model
    config = _loop_config(est, ctx, copies, out_dir)
    cpus = max(1, int(est.n_jobs or 0))
    emit(ctx.callbacks, "log", message=f"lgbm: data-parallel over {workers} Ray Train "
                                       f"workers ({cpus} CPU each), {total} rows")
    with train_cluster(workers, ctx.ray_address, cpus_per_worker=cpus):
        from ray.train import RunConfig, ScalingConfig
        from ray.train.lightgbm import LightGBMTrainer

        trainer = LightGBMTrainer(
            train_loop, train_loop_config=config,
            scaling_config=ScalingConfig(num_workers=workers,
                                         resources_per_worker={"CPU": cpus}),
            run_config=RunConfig(name=f"lgbm-{Path(ctx.run_dir).name}",
                                 storage_path=str(out_dir)))
        try:
            fit_until_stopped(trainer.fit, ctx.run_dir, ctx.should_stop)
        except (TrainingCancelled, EngineError):
            raise
        except Exception as exc:  # noqa: BLE001 - Ray's wrapper → the workers' own error
            raise original_error(exc) from None
    if not wait_for(out_dir / META_FILE):
        raise RunError("rank 0 finished without writing the model", path=out_dir,
                       hint="the run folder must be on a filesystem every node shares "
                            "(docs/cluster.md)")
    load_into(est, out_dir)
    (out_dir / MODEL_FILE).unlink()   # the runner saves it (at the best iteration) itself
    return est


def _loop_config(est: Any, ctx: TrainContext, copies: int, out_dir: Path) -> dict[str, Any]:
    """Everything a worker needs, as plain data (pickled to every worker). The validation
    matrix is computed once here (the frozen, cached val noise) and sent along."""
    val = None
    if ctx.val is not None:
        val = (np.asarray(ctx.val.noisy(ctx.noise_level), dtype=np.float32),
               np.asarray(ctx.val.log_g, dtype=np.float64))
    return {"dataset_root": str(ctx.dataset_root), "train_rows": int(ctx.train.n_rows),
            "noise_level": float(ctx.noise_level), "seed": int(ctx.seed),
            "copies": int(copies), "val": val, "run_dir": str(ctx.run_dir),
            "out_dir": str(out_dir), "params": est.booster_params(),
            "dataset_params": est.dataset_params(),
            "n_estimators": int(est.n_estimators),
            "early_stopping_rounds": int(est.early_stopping_rounds or 0),
            "chunk_rows": int(est.chunk_rows), "num_threads": max(1, int(est.n_jobs or 0))}


def load_into(est: Any, out_dir: Path) -> Any:
    """Rank 0's model text + facts → the StreamingLGBM attributes the runner uses."""
    import lightgbm as lgb

    meta = json.loads((Path(out_dir) / META_FILE).read_text())
    est.booster_ = lgb.Booster(model_file=str(Path(out_dir) / MODEL_FILE))
    est.best_iteration_ = int(meta["best_iteration"])
    est.evals_result_ = {k: [float(v) for v in vs] for k, vs in meta["evals_result"].items()}
    est.stopped_ = bool(meta["stopped"])
    est.n_features_in_ = int(meta["n_features"])
    est.cache_hit_ = False
    est.workers_ = int(meta["workers"])
    est.shard_rows_ = list(meta["shard_rows"])
    return est


# ------------------------------------------------------------------------ worker side
def train_loop(config: dict[str, Any]) -> None:
    """The per-worker train function (`LightGBMTrainer(train_loop, ...)`)."""
    import ray.train
    from ray.train.collective import broadcast_from_rank_zero
    from ray.train.lightgbm import get_network_params

    from engine.events import EventLog
    from engine.io.dataset import Dataset
    from engine.models.ray_train import stop_requested

    context = ray.train.get_context()
    rank, size = context.get_world_rank(), context.get_world_size()
    run_dir = Path(config["run_dir"])
    callbacks = [EventLog(run_dir / "events.jsonl")] if rank == 0 else []
    ds = Dataset(config["dataset_root"])
    try:
        split = ds.train(config["train_rows"])
        total = int(split.n_rows) * int(config["copies"])
        lo, hi = shard_range(total, size, rank)
        source = ShardSource(split, config["noise_level"], config["seed"],
                             config["copies"], lo, hi)
        booster, facts = train_shard(source, config, network=get_network_params(),
                                     rank=rank, callbacks=callbacks,
                                     should_stop=lambda: stop_requested(run_dir),
                                     agree=broadcast_from_rank_zero)
    finally:
        ds.close()
    if rank == 0:
        bounds = [shard_range(total, size, r) for r in range(size)]
        facts.update(workers=size, shard_rows=[hi - lo for lo, hi in bounds])
        _write_outputs(Path(config["out_dir"]), booster, facts)


def train_shard(source: Any, config: dict[str, Any], *, network: dict[str, Any], rank: int,
                callbacks: Callbacks, should_stop: Callable[[], bool],
                agree: Callable[[Any], Any]) -> tuple[Any, dict[str, Any]]:
    """`lightgbm.train` on this worker's shard as one machine of `network`; returns the
    booster and the facts rank 0 saves (best iteration, metric history, stopped)."""
    import lightgbm as lgb

    from engine.models.lgbm import ChunkSequence

    t0 = time.perf_counter()
    ref = shared_bins(source.split, source.noise_level, source.seed, source.copies,
                      config["dataset_params"], callbacks)
    emit(callbacks, "log", message=f"lgbm: binning {source.n_rows} rows on each of "
                                   f"{network.get('num_machines', 1)} workers")
    train = lgb.Dataset(ChunkSequence(source, int(config["chunk_rows"])),
                        label=source.labels(), reference=ref, free_raw_data=True,
                        params={**config["dataset_params"], "pre_partition": True})
    train.construct()          # now, before lightgbm.train starts the network
    del ref
    valid_sets, names = [], []
    if config["val"] is not None:
        Xv, yv = config["val"]
        valid_sets.append(lgb.Dataset(Xv, label=yv, reference=train,
                                      params=config["dataset_params"]))
        names.append("val")
    params = {**config["params"], **network, "tree_learner": "data_parallel",
              "pre_partition": True, "num_threads": int(config["num_threads"])}
    total = int(config["n_estimators"])
    report = _WorkerReport(rank, total, callbacks, should_stop, agree)
    cbs: list[Any] = [report]
    if valid_sets and config["early_stopping_rounds"]:
        cbs.append(lgb.early_stopping(int(config["early_stopping_rounds"]),
                                      first_metric_only=True, verbose=False))
    emit(callbacks, "start", total=total, unit="trees", what="lgbm")
    booster = lgb.train(params, train, num_boost_round=total, valid_sets=valid_sets,
                        valid_names=names, callbacks=cbs)
    best = int(booster.best_iteration or 0)
    facts = {"best_iteration": best if best > 0 else int(booster.current_iteration()),
             "iterations": int(booster.current_iteration()),
             "evals_result": report.history, "stopped": report.stopped,
             "n_features": int(source.n_features),
             "train_seconds": time.perf_counter() - t0}
    return booster, facts


class _WorkerReport:
    """LightGBM callback on every worker: keeps the validation history; rank 0 turns it
    into events; all workers agree (rank 0 decides) every ~CHECK_S whether the run was
    asked to stop, and if so end through LightGBM's EarlyStopException together."""

    def __init__(self, rank: int, total: int, callbacks: Callbacks,
                 should_stop: Callable[[], bool], agree: Callable[[Any], Any]) -> None:
        self.rank, self.total = rank, total
        # an instance attribute (lightgbm.train overwrites a missing one): before
        # LightGBM's early stopping (30), as in StreamingLGBM, so the last round is reported
        self.order = 20
        self.callbacks, self.should_stop, self.agree = callbacks, should_stop, agree
        self.history: dict[str, list[float]] = {}
        self.stopped = False
        self.next_check = 1
        self._mark = (0, time.perf_counter())

    def __call__(self, env: Any) -> None:
        import lightgbm as lgb

        step = env.iteration + 1
        fields = {}
        for _data, name, value, _hib in env.evaluation_result_list or ():
            self.history.setdefault(name, []).append(float(value))
            fields[f"val_{name}"] = float(value)
            emit(self.callbacks, "metric", step=step, name=f"val_{name}", value=float(value),
                 split="val")
        emit(self.callbacks, "progress", done=step, total=self.total, **fields)
        if step < self.next_check:
            return
        proposal = None
        if self.rank == 0:
            last_step, last_t = self._mark
            now = time.perf_counter()
            per_iter = max((now - last_t) / max(step - last_step, 1), 1e-6)
            proposal = (bool(self.should_stop()), step + max(1, math.floor(CHECK_S / per_iter)))
            self._mark = (step, now)
        stop, self.next_check = self.agree(proposal)
        if stop:
            self.stopped = True
            raise lgb.callback.EarlyStopException(env.iteration,
                                                  env.evaluation_result_list or [])


def _write_outputs(out_dir: Path, booster: Any, facts: dict[str, Any]) -> None:
    """Model text (all trees; best_iteration in the facts) then the facts JSON, each
    written under a temporary name and renamed: the JSON appearing means both are whole."""
    from engine.atomic import atomic_path, write_json

    with atomic_path(out_dir / MODEL_FILE) as tmp:
        booster.save_model(str(tmp), num_iteration=-1)
    write_json(out_dir / META_FILE, facts, indent=1, safe=False)  # NaN kept as NaN
