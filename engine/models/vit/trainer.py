"""The SpecViT training loop: plain PyTorch, fast on CUDA, deterministic and resumable.

What it fixes relative to the research loop (docs/vit.md, Research quirks):
  * cosine schedule whose period is the actual run length in steps (not T_max=100 epochs);
  * loss names are explicit (`mse`, `l1`, `huber`); `mae` no longer silently means MSE;
  * weight decay only on weight matrices (not biases, LayerNorms, CLS, positional table);
  * validation R²/MAE on the whole val set in dex (not per-batch means in z units);
  * the estimator ends holding the BEST checkpoint (by val R²), not the last epoch;
  * divergence (non-finite loss) and collapse to the mean end the run with a RunError.

The same loop runs data-parallel (engine/models/vit/distributed.py, one process per Ray
Train worker) when given a `Parallel` with world_size > 1: every rank walks the same global
batches and draws the same global noise, then trains on its own slice of rows through DDP
(averaged gradients), so the optimisation follows the single-process run step for step.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from engine.atomic import atomic_path
from engine.errors import RunError, SpecError
from engine.eval.metrics import r2_along
from engine.events import emit

LOSSES = ("mse", "l1", "huber", "beta_nll")
BETA = 0.5                      # β-NLL exponent (Seitzer et al. 2022): 0 = NLL, 1 ≈ MSE
VAR_FLOOR = 1e-4                # z² units: σ ≥ 0.01 label std, no variance collapse
LOGVAR_CLAMP = (-12.0, 8.0)


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation hyper-parameters (frozen; built by the estimator)."""

    epochs: int = 200
    batch_size: int = 256
    lr: float = 3e-4
    weight_decay: float = 0.01
    betas: tuple[float, float] = (0.9, 0.999)
    warmup_frac: float = 0.05        # fraction of all steps spent in linear warmup
    min_lr: float = 1e-5             # cosine floor, reached at the last step
    grad_clip: float = 0.5
    loss: str = "mse"
    noise_level: float = 1.0
    seed: int = 42
    use_amp: bool = False            # bf16 autocast (CUDA)
    use_compile: bool = False        # torch.compile (CUDA)
    eval_batch_size: int = 1024
    collapse_patience: int = 5
    max_steps: int | None = None     # hard cap on total steps (tests, benchmarks)
    moe_aux: float = 0.01            # weight of a MoE head's load-balancing loss

    def to_dict(self) -> dict:
        return asdict(self)


def make_loss(name: str) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """The loss by explicit name; anything else is a SpecError (the research mapped 'mae'
    to MSE through a substring test)."""
    if name == "mse":
        return F.mse_loss
    if name == "l1":
        return F.l1_loss
    if name == "huber":
        return lambda a, b: F.huber_loss(a, b, delta=1.0)
    if name == "beta_nll":
        return beta_nll_loss
    raise SpecError(f"unknown loss {name!r}", key="loss",
                    hint=f"use one of {', '.join(LOSSES)} (L1 is 'l1', not 'mae')")


def split_mean_var(pred: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """A heteroscedastic head's (B, 2T) output -> mean (B, T), variance (B, T) in z units:
    exp(clamped log σ²) + VAR_FLOOR."""
    t = pred.shape[1] // 2
    logvar = pred[:, t:].clamp(*LOGVAR_CLAMP)
    return pred[:, :t], logvar.exp() + VAR_FLOOR


def beta_nll_loss(pred: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """β-NLL (Seitzer et al. 2022) of z-scored labels y (B, T) under N(μ, σ²) from the
    (B, 2T) head: mean over rows of stopgrad(σ²)^β · (½ log σ² + ½ (y − μ)² / σ²).
    Why β = 0.5: plain NLL (β = 0) lets hard stars be explained away by a large σ and
    under-fits the mean; the stop-gradient weight restores MSE-like mean gradients."""
    mu, var = split_mean_var(pred)
    nll = 0.5 * (var.log() + (y - mu) ** 2 / var)
    return (nll * var.detach() ** BETA).mean()


def lr_lambda(total_steps: int, warmup_steps: int, min_ratio: float) -> Callable[[int], float]:
    """Linear warmup then one cosine half-period ending exactly at the last step."""
    def f(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        t = min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps))
        return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * t))
    return f


def make_optimizer(model: nn.Module, cfg: TrainConfig) -> torch.optim.AdamW:
    """AdamW with two groups: decayed weight matrices and undecayed biases/LN/CLS/PE."""
    skip = model.no_decay_names()
    decay = [p for n, p in model.named_parameters() if n not in skip]
    rest = [p for n, p in model.named_parameters() if n in skip]
    groups = [{"params": decay, "weight_decay": cfg.weight_decay},
              {"params": rest, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=cfg.lr, betas=cfg.betas)


@torch.no_grad()
def predict_z(model: nn.Module, X: np.ndarray, device: torch.device, batch_size: int,
              use_amp: bool) -> np.ndarray:
    """Model outputs (z units) for noisy flux X (N, L) in batches, float32 (N, T)."""
    model.eval()
    out = []
    for i in range(0, len(X), batch_size):
        xb = torch.as_tensor(np.asarray(X[i:i + batch_size], dtype=np.float32)).to(device)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=use_amp):
            out.append(model(xb).float().cpu())
    return torch.cat(out).numpy() if out else np.zeros((0, 1), np.float32)


def r2_mae(y: np.ndarray, p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-target R² (NaN for a constant target) and MAE over the whole set (y, p: (N, T)
    in dex)."""
    return r2_along(y, p, axis=0), np.abs(y - p).mean(0)


@dataclass(frozen=True)
class Parallel:
    """This process's place in a data-parallel fit (torch.distributed already initialised by
    the caller, e.g. Ray Train). The default is one process: nothing is wrapped or reduced.

    Why slice a global batch instead of giving each rank its own batches: the global batch,
    its noise and the data order stay exactly those of the single-process run, so the
    averaged gradient is the single-process gradient and a 2-worker run can be checked
    against a 1-worker run to float precision."""

    rank: int = 0
    world_size: int = 1

    @property
    def active(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """Rank 0 writes checkpoints and reports events; the others only train."""
        return self.rank == 0

    def rows(self, n: int) -> tuple[int, int]:
        """[lo, hi) of this rank's rows in a global batch of n (sizes differ by at most 1)."""
        base, extra = divmod(n, self.world_size)
        lo = self.rank * base + min(self.rank, extra)
        return lo, lo + base + (1 if self.rank < extra else 0)

    def wrap(self, model: nn.Module, device: torch.device) -> nn.Module:
        """DDP around the model (gradients averaged over ranks in backward). Buffers (the
        input mean) are equal on every rank, so they are not re-broadcast every forward."""
        if not self.active:
            return model
        from torch.nn.parallel import DistributedDataParallel as DDP
        ids = [device] if device.type == "cuda" else None
        return DDP(model, device_ids=ids, broadcast_buffers=False)

    def mean(self, value: torch.Tensor) -> torch.Tensor:
        """The mean of a scalar over ranks (every rank gets it)."""
        if not self.active:
            return value
        import torch.distributed as dist
        out = value.detach().clone().reshape(1).float()
        dist.all_reduce(out)
        return out[0] / self.world_size

    def any(self, flag: bool, device: torch.device) -> bool:
        """True on every rank when it is True on any: ranks must agree when to stop, or
        the ones still training would wait forever in the next all-reduce."""
        if not self.active:
            return flag
        import torch.distributed as dist
        t = torch.tensor([1.0 if flag else 0.0], device=device)
        dist.all_reduce(t, op=dist.ReduceOp.MAX)
        return bool(t.item() > 0)


@dataclass
class LoopState:
    """Everything a resumed run needs besides model/optimizer/scheduler state."""

    epoch: int = 0                  # epoch in progress (0-based)
    step_in_epoch: int = 0          # batches of `epoch` already trained
    global_step: int = 0
    best_r2: float = -math.inf
    best_epoch: int = -1
    collapse_run: int = 0
    history: list = field(default_factory=list)


@dataclass
class FitOutcome:
    stopped: bool                   # True when should_stop() ended the run early
    best_epoch: int
    best_r2: float
    history: list


class Trainer:
    """One fit: owns the optimizer, schedule, RNGs, checkpoints and event reporting."""

    def __init__(self, model: nn.Module, cfg: TrainConfig, data, device: torch.device, *,
                 val: tuple[np.ndarray, np.ndarray] | None, y_mu: np.ndarray,
                 y_sigma: np.ndarray, callbacks=None, checkpoint_dir: Path | None = None,
                 should_stop: Callable[[], bool] | None = None,
                 extra_state: dict | None = None, parallel: Parallel | None = None) -> None:
        self.model, self.cfg, self.data, self.device = model, cfg, data, device
        self.par = parallel or Parallel()
        self.val, self.y_mu, self.y_sigma = val, y_mu, y_sigma
        self.callbacks = callbacks
        self.ckpt_dir = Path(checkpoint_dir) if checkpoint_dir else None
        self.should_stop = should_stop or (lambda: False)
        self.extra_state = extra_state or {}
        self.loss_fn = make_loss(cfg.loss)
        self.spe = data.steps_per_epoch(cfg.batch_size)
        self.total_steps = cfg.epochs * self.spe
        if cfg.max_steps is not None:
            self.total_steps = min(self.total_steps, cfg.max_steps)
        self.warmup_steps = max(1, int(round(cfg.warmup_frac * self.total_steps)))
        self.opt = make_optimizer(model, cfg)
        self.sched = torch.optim.lr_scheduler.LambdaLR(
            self.opt, lr_lambda(self.total_steps, self.warmup_steps, cfg.min_lr / cfg.lr))
        self.noise_gen = torch.Generator(device=device).manual_seed(cfg.seed)
        self.state = LoopState()
        self.best_state: dict | None = None
        wrapped = self.par.wrap(model, device)
        self.fwd = torch.compile(wrapped) if cfg.use_compile else wrapped
        # validation runs on every rank with the bare model: no collective inside it
        self.eval_fwd = self.fwd if not self.par.active else (
            torch.compile(model) if cfg.use_compile else model)

    # ------------------------------------------------------------------ checkpoints
    def _rng_state(self) -> dict:
        s = {"torch": torch.get_rng_state(), "noise": self.noise_gen.get_state()}
        if self.device.type == "cuda":
            s["cuda"] = torch.cuda.get_rng_state(self.device)
        return s

    def save_last(self) -> None:
        if self.ckpt_dir is None or not self.par.is_main:
            return
        st = self.state
        payload = {"model": self.model.state_dict(), "optimizer": self.opt.state_dict(),
                   "scheduler": self.sched.state_dict(), "rng": self._rng_state(),
                   "loop": {"epoch": st.epoch, "step_in_epoch": st.step_in_epoch,
                            "global_step": st.global_step, "best_r2": st.best_r2,
                            "best_epoch": st.best_epoch, "collapse_run": st.collapse_run,
                            "history": st.history},
                   **self.extra_state}
        _save(payload, self.ckpt_dir / "last.pt")

    def _save_best(self) -> None:
        self.best_state = {k: v.detach().clone() for k, v in self.model.state_dict().items()}
        if self.ckpt_dir is not None and self.par.is_main:
            _save({"model": self.best_state, "epoch": self.state.best_epoch,
                          "val_r2": self.state.best_r2, **self.extra_state},
                         self.ckpt_dir / "best.pt")

    def restore(self) -> bool:
        """Load last.pt when present; True if the run resumes from it."""
        path = self.ckpt_dir / "last.pt" if self.ckpt_dir else None
        if path is None or not path.exists():
            return False
        try:
            ck = torch.load(path, map_location=self.device, weights_only=True)
        except Exception as exc:  # noqa: BLE001 - a damaged file: train from the start
            emit(self.callbacks, "log", message=f"{path} could not be read ({exc}); "
                                                "training from the start")
            return False
        self.model.load_state_dict(ck["model"])
        self.opt.load_state_dict(ck["optimizer"])
        self.sched.load_state_dict(ck["scheduler"])
        torch.set_rng_state(ck["rng"]["torch"].cpu())
        self.noise_gen.set_state(ck["rng"]["noise"].cpu())
        if "cuda" in ck["rng"] and self.device.type == "cuda":
            torch.cuda.set_rng_state(ck["rng"]["cuda"].cpu(), self.device)
        self.state = LoopState(**ck["loop"])
        best = self.ckpt_dir / "best.pt"
        if best.exists():
            self.best_state = torch.load(best, map_location=self.device,
                                         weights_only=True)["model"]
        st = self.state
        where = ("training complete" if st.global_step >= self.total_steps
                 else f"epoch {st.epoch + 1}/{self.cfg.epochs}")
        emit(self.callbacks, "log", message=f"resumed from {path.name} at step "
                                            f"{st.global_step}/{self.total_steps} ({where})")
        return True

    # ------------------------------------------------------------------ loop
    def fit(self, resume: bool = False) -> FitOutcome:
        if resume:
            self.restore()
        if self.par.active and not self.par.is_main:
            # own dropout masks per rank (the model init and the noise stay shared)
            torch.manual_seed(cfg_seed_for_rank(self.cfg.seed, self.par.rank,
                                                self.state.global_step))
        st, cfg = self.state, self.cfg
        emit(self.callbacks, "start", total=self.total_steps, unit="step", what="train vit")
        t0, steps0 = time.perf_counter(), st.global_step
        last_emit = 0.0
        while st.global_step < self.total_steps:
            t_epoch, n_seen, n_local, loss_sum = time.perf_counter(), 0, 0, None
            batches = self.data.batches(cfg.seed, st.epoch, cfg.batch_size, st.step_in_epoch)
            for flux, err, y in batches:
                if self._stop_now():
                    self.save_last()
                    return self._outcome(stopped=True)
                loss = self._step(flux, err, y)
                loss_sum = loss.detach() if loss_sum is None else loss_sum + loss.detach()
                n_seen += len(y)
                n_local += 1
                st.step_in_epoch += 1
                st.global_step += 1
                if self.device.type == "cpu" or st.global_step % 50 == 0:
                    self._check_finite(loss_sum)
                now = time.perf_counter()
                if now - last_emit > 1.0:
                    last_emit = now
                    self._progress(t0, steps0, loss=float(loss.detach()))
                if st.global_step >= self.total_steps:
                    break
            self._check_finite(loss_sum)
            self._end_epoch(loss_sum, n_local, n_seen, time.perf_counter() - t_epoch, t0, steps0)
            if self._stop_now():
                self.save_last()
                return self._outcome(stopped=True)
        if self.best_state is not None:
            self.model.load_state_dict(self.best_state)
        return self._outcome(stopped=False)

    def _stop_now(self) -> bool:
        return self.par.any(bool(self.should_stop()), self.device)

    def _step(self, flux, err, y) -> torch.Tensor:
        """One optimisation step on a batch with fresh noise drawn on the device.

        Data-parallel: the noise is drawn for the whole global batch (same generator state
        on every rank), then each rank keeps its rows. Its loss is scaled by
        world·n_rank/n_global so that DDP's average of the rank gradients is the gradient
        of the global-batch mean loss; the loss returned is that global mean."""
        self.model.train()
        self.fwd.train()
        eps = torch.randn(flux.shape, generator=self.noise_gen, device=self.device)
        n_global = len(flux)
        if self.par.active:
            lo, hi = self.par.rows(n_global)
            flux, err, y, eps = flux[lo:hi], err[lo:hi], y[lo:hi], eps[lo:hi]
        noisy = flux + eps * err * self.cfg.noise_level
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.cfg.use_amp):
            pred = self.fwd(noisy).float()
        if len(y) == 0:                      # fewer rows than ranks: join with zero gradient
            loss = pred.sum() * 0.0
        else:
            loss = self.loss_fn(pred, y.view(len(y), -1))
            aux = getattr(self.model.head, "aux_loss", None)
            if aux is not None and self.cfg.moe_aux:
                loss = loss + self.cfg.moe_aux * aux
        if self.par.active:
            loss = loss * (self.par.world_size * len(y) / n_global)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(self.model.parameters(), self.cfg.grad_clip)
        self.opt.step()
        self.sched.step()
        return self.par.mean(loss) if self.par.active else loss

    def _check_finite(self, loss_sum) -> None:
        if loss_sum is not None and not bool(torch.isfinite(loss_sum)):
            st = self.state
            raise RunError(
                f"non-finite loss at epoch {st.epoch} step {st.global_step} "
                f"(training diverged)", key="loss",
                hint="lower lr, keep grad_clip (0.5), check the input flux/error for NaN")

    def _end_epoch(self, loss_sum, n_batches: int, n_seen: int, dt: float, t0: float,
                   steps0: int) -> None:
        """Validate, report metrics, keep the best weights, checkpoint (after a resume the
        train loss of the resumed epoch covers only the batches trained since)."""
        st = self.state
        train_loss = float(loss_sum) / n_batches if loss_sum is not None else float("nan")
        rec = {"epoch": st.epoch, "train_loss": train_loss, "lr": self.sched.get_last_lr()[0],
               "samples_per_s": n_seen / max(dt, 1e-9)}
        t_val = time.perf_counter()
        rec.update(self._validate())
        rec["val_seconds"] = time.perf_counter() - t_val     # what the per-epoch val pass costs
        st.history.append(rec)
        for name in ("train_loss", "lr", "samples_per_s"):
            emit(self.callbacks, "metric", step=st.epoch, name=name, value=rec[name],
                 split="train")
        for name in ("val_r2", "val_mae"):
            if name in rec:
                emit(self.callbacks, "metric", step=st.epoch, name=name[4:], value=rec[name],
                     split="val")
        self._select_and_guard(rec)
        st.epoch += 1
        st.step_in_epoch = 0
        self._progress(t0, steps0, loss=rec["train_loss"], val_r2=rec.get("val_r2"))
        self.save_last()

    def _validate(self) -> dict:
        if self.val is None:
            return {}
        X, y = self.val
        z = predict_z(self.eval_fwd, X, self.device, self.cfg.eval_batch_size, self.cfg.use_amp)
        pred = z[:, :len(self.y_mu)] * self.y_sigma + self.y_mu   # means (a σ head follows)
        r2, mae = r2_mae(y.reshape(pred.shape), pred)
        return {"val_r2": float(r2.mean()), "val_mae": float(mae.mean()),
                "pred_std_ratio": float((pred.std(0) / np.maximum(y.reshape(pred.shape)
                                                                  .std(0), 1e-12)).min())}

    def _select_and_guard(self, rec: dict) -> None:
        """Keep the best epoch by val R² (dex); raise on a collapse to the mean."""
        st = self.state
        if "val_r2" not in rec:
            self.best_state = None          # no validation: the last weights are the result
            st.best_epoch, st.best_r2 = st.epoch, float("nan")
            return
        if rec["val_r2"] > st.best_r2:
            st.best_r2, st.best_epoch = rec["val_r2"], st.epoch
            self._save_best()
        collapsed = rec["val_r2"] < 0.01 and rec["pred_std_ratio"] < 0.05
        # small sets sit at the mean for a while before learning: only count after the
        # warmup AND the first quarter of the run (the research SW runs stayed collapsed)
        past_warmup = st.global_step > max(self.warmup_steps, self.total_steps // 4)
        st.collapse_run = st.collapse_run + 1 if (collapsed and past_warmup) else 0
        if st.collapse_run >= self.cfg.collapse_patience:
            raise RunError(
                f"collapse to the mean: val R² {rec['val_r2']:.4f} and prediction std "
                f"{100 * rec['pred_std_ratio']:.2f}% of the label std for "
                f"{st.collapse_run} consecutive epochs (epoch {st.epoch})", key="val_r2",
                hint="lower lr (e.g. 1.5e-4), use the C1D tokenizer, keep grad_clip 0.5")

    def _progress(self, t0: float, steps0: int, **fields) -> None:
        st = self.state
        done = st.global_step - steps0
        rate = done / max(time.perf_counter() - t0, 1e-9)
        eta = (self.total_steps - st.global_step) / rate if rate > 0 else None
        fields = {k: v for k, v in fields.items() if v is not None}
        emit(self.callbacks, "progress", done=st.global_step, total=self.total_steps,
             epoch=st.epoch, eta=eta, **fields)

    def _outcome(self, stopped: bool) -> FitOutcome:
        st = self.state
        return FitOutcome(stopped=stopped, best_epoch=st.best_epoch, best_r2=st.best_r2,
                          history=list(st.history))


def cfg_seed_for_rank(seed: int, rank: int, step: int) -> int:
    """Seed of a non-zero rank's global torch RNG (dropout) when a data-parallel fit starts
    or resumes at `step`."""
    return (int(seed) * 1_000_003 + 7919 * int(rank) + int(step)) % (2 ** 63)


def _save(obj, path: Path) -> None:
    """torch.save atomically (never a half-written checkpoint)."""
    with atomic_path(path) as tmp:
        torch.save(obj, tmp)
