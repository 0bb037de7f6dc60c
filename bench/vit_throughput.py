"""ViT training throughput and R²-within-a-time-budget: logg's SpecViT vs a research-style
eager fp32 implementation of the same architecture, measured side by side in one run.

Baseline ("research"): the same layers built from nn.MultiheadAttention, eager fp32, batches
gathered on the host and copied to the device each step, noise drawn on the device — the
setup of the research code (HF ViT layers, Lightning fp32 default, DataLoader batches).
logg: SpecViT with SDPA, the training set resident on the device, and on CUDA bf16 autocast
+ torch.compile + flash attention.

    python bench/vit_throughput.py                       # CPU, vit-cpu (+ vit-paper, few steps)
    python bench/vit_throughput.py --device cuda         # GPU: vit-paper bf16+compile vs fp32

Writes bench/results/vit_throughput.json (and .md).
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from engine.atomic import write_json, write_text  # noqa: E402
from engine.eval.metrics import r2  # noqa: E402
from engine.models.vit.estimator import SpecViTRegressor  # noqa: E402
from engine.models.vit.model import SpecViT, ViTConfig  # noqa: E402
from engine.models.vit.presets import VIT_PRESETS  # noqa: E402
from engine.models.vit.trainer import lr_lambda  # noqa: E402

OUT = Path(__file__).resolve().parent / "results" / "vit_throughput"


# ------------------------------------------------------------------ research-style baseline

class ResearchBlock(nn.Module):
    def __init__(self, d: int, h: int, p: float) -> None:
        super().__init__()
        self.ln1, self.ln2 = nn.LayerNorm(d, eps=1e-12), nn.LayerNorm(d, eps=1e-12)
        self.attn = nn.MultiheadAttention(d, h, dropout=p, batch_first=True)
        self.mlp = nn.Sequential(nn.Linear(d, 4 * d), nn.GELU(), nn.Linear(4 * d, d),
                                 nn.Dropout(p))
        self.drop = nn.Dropout(p)

    def forward(self, x):
        y = self.ln1(x)
        x = x + self.drop(self.attn(y, y, y, need_weights=False)[0])
        return x + self.mlp(self.ln2(x))


class ResearchViT(nn.Module):
    """Same architecture (C1D tokens, CLS, learned PE, pre-LN, head on CLS), plain layers."""

    def __init__(self, cfg: ViTConfig) -> None:
        super().__init__()
        d = cfg.hidden
        self.proj = nn.Conv1d(1, d, cfg.patch_size, stride=cfg.stride)
        self.cls = nn.Parameter(torch.randn(1, 1, d))
        self.pos = nn.Parameter(torch.randn(1, cfg.n_patches + 1, d))
        self.drop = nn.Dropout(cfg.dropout)
        self.blocks = nn.ModuleList(ResearchBlock(d, cfg.heads, cfg.dropout)
                                    for _ in range(cfg.layers))
        self.ln = nn.LayerNorm(d, eps=1e-12)
        self.head = nn.Linear(d, cfg.n_targets)

    def forward(self, x):
        h = self.proj(x.unsqueeze(1)).transpose(1, 2)
        h = torch.cat([self.cls.expand(len(h), -1, -1), h], 1) + self.pos
        h = self.drop(h)
        for b in self.blocks:
            h = b(h)
        return self.head(self.ln(h[:, 0]))


# ------------------------------------------------------------------ data

def toy_spectra(n: int, n_pixels: int, seed: int):
    """Line spectra whose depths/widths depend on log g and T_eff, error ~ 2 % (SNR ~ 50)."""
    rng = np.random.default_rng(seed)
    g, t = rng.uniform(1, 5, n), rng.uniform(4000, 6500, n)
    x = np.arange(n_pixels)
    centres = np.random.default_rng(99).uniform(20, n_pixels - 20, 60)
    flux = np.ones((n, n_pixels), np.float32)
    for i, c in enumerate(centres):
        a = 0.05 + 0.3 * ((i * 37) % 11) / 11
        depth = a * (t[:, None] / 6500) ** (1 + i % 3) * (0.6 + 0.1 * g[:, None] * (i % 2))
        width = 1.5 + 0.4 * g[:, None] * ((i + 1) % 2)
        flux -= (depth * np.exp(-0.5 * ((x - c) / width) ** 2)).astype(np.float32)
    error = np.full_like(flux, 0.05)
    return flux, error, g


def cfg_for(preset: str, n_pixels: int) -> ViTConfig:
    p = VIT_PRESETS[preset]
    return ViTConfig(n_pixels=n_pixels, patch_size=p["patch_size"], stride=p["stride"],
                     hidden=p["hidden"], layers=p["layers"], heads=p["heads"],
                     dropout=p["dropout"], attn_dropout=p["attn_dropout"])


# ------------------------------------------------------------------ throughput

def research_stepper(cfg, flux, error, y, device, batch):
    """One training step of the research-style setup (a closure)."""
    torch.manual_seed(0)
    model = ResearchViT(cfg).to(device).train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    Xh, Eh, yh = (torch.as_tensor(a) for a in (flux, error, y.astype(np.float32)))
    pin = device.type == "cuda"

    def step():
        idx = torch.randint(0, len(Xh), (batch,))
        xb, eb, yb = Xh[idx], Eh[idx], yh[idx]
        if pin:
            xb, eb, yb = xb.pin_memory(), eb.pin_memory(), yb.pin_memory()
        xb, eb, yb = (t.to(device, non_blocking=True) for t in (xb, eb, yb))
        noisy = xb + torch.randn_like(xb) * eb
        loss = F.mse_loss(model(noisy).view(-1), yb)
        opt.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 0.5)
        opt.step()

    return step


def logg_stepper(cfg, flux, error, y, device, batch):
    """The same step as engine.models.vit.trainer.Trainer._step on resident data."""
    from engine.models.vit.batches import ResidentData
    from engine.models.vit.trainer import TrainConfig, Trainer
    torch.manual_seed(0)
    model = SpecViT(cfg).to(device)
    cuda = device.type == "cuda"
    tcfg = TrainConfig(epochs=1, batch_size=batch, lr=1e-4, use_amp=cuda, use_compile=cuda,
                       noise_level=1.0)
    data = ResidentData(flux, error, y.astype(np.float32).reshape(-1, 1), device)
    tr = Trainer(model, tcfg, data, device, val=None, y_mu=np.zeros(1), y_sigma=np.ones(1))
    it = iter(())
    epoch = [0]

    def step():
        nonlocal it
        try:
            f, e, yb = next(it)
        except StopIteration:
            epoch[0] += 1
            it = data.batches(0, epoch[0], batch)
            f, e, yb = next(it)
        tr._step(f, e, yb)

    return step


def time_alternating(steppers, device, steps, warmup, rounds) -> list[float]:
    """Seconds per step of each stepper: warm all up (compile, allocator), then alternate
    them for `rounds` rounds and keep each one's best round, so a noisy shared machine
    penalises neither side more than the other."""
    for step in steppers:
        for _ in range(warmup):
            step()
    _sync(device)
    best = [math.inf] * len(steppers)
    for _ in range(rounds):
        for i, step in enumerate(steppers):
            t = time.perf_counter()
            for _ in range(steps):
                step()
            _sync(device)
            best[i] = min(best[i], (time.perf_counter() - t) / steps)
    return best


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


# ------------------------------------------------------------------ R² in a time budget

def race_research(cfg, data, device, batch, budget_s, lr, epochs_hint):
    flux, error, y, Xte, yte = data
    torch.manual_seed(0)
    model = ResearchViT(cfg).to(device)
    mu, sd = y.mean(), y.std()
    yz = torch.as_tensor(((y - mu) / sd).astype(np.float32))
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01)
    total = epochs_hint * math.ceil(len(y) / batch)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_lambda(total, max(1, total // 20),
                                                              0.01))
    Xh, Eh = torch.as_tensor(flux), torch.as_tensor(error)
    t0, steps = time.perf_counter(), 0
    while time.perf_counter() - t0 < budget_s and steps < total:
        model.train()
        for idx in torch.randperm(len(y)).split(batch):
            xb, eb, yb = (t[idx].to(device) for t in (Xh, Eh, yz))
            loss = F.mse_loss(model(xb + torch.randn_like(xb) * eb).view(-1), yb)
            opt.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), 0.5)
            opt.step()
            sched.step()
            steps += 1
            if time.perf_counter() - t0 >= budget_s or steps >= total:
                break
    model.eval()
    with torch.no_grad():
        p = torch.cat([model(torch.as_tensor(Xte[i:i + 512]).to(device)).float().cpu()
                       for i in range(0, len(Xte), 512)]).view(-1).numpy() * sd + mu
    return r2(yte, p), steps


def race_logg(preset, data, device, batch, budget_s, lr, epochs_hint):
    flux, error, y, Xte, yte = data
    params = dict(VIT_PRESETS[preset], batch_size=batch, lr=lr, epochs=epochs_hint,
                  device=device.type, seed=0, min_lr=lr * 0.01)
    t0 = time.perf_counter()
    est = SpecViTRegressor(**params).fit(
        flux, y, error=error, should_stop=lambda: time.perf_counter() - t0 >= budget_s)
    return r2(yte, est.predict(Xte)), len(est.history_)


# ------------------------------------------------------------------ main

def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--presets", default=None, help="comma list (default by device)")
    ap.add_argument("--steps", type=int, default=None, help="timed steps per measurement")
    ap.add_argument("--budget-s", type=float, default=None, help="wall clock per R² race")
    ap.add_argument("--n-train", type=int, default=None)
    args = ap.parse_args()
    device = torch.device(args.device)
    cuda = device.type == "cuda"
    presets = (args.presets or ("vit-paper" if cuda else "vit-cpu,vit-paper")).split(",")
    n_pixels = 4096
    results = {"device": str(device), "host": platform.node(), "torch": torch.__version__,
               "threads": torch.get_num_threads(), "cpu_count": os.cpu_count(),
               "gpu": torch.cuda.get_device_name(device) if cuda else None,
               "throughput": [], "race": []}
    flux, error, y = toy_spectra(args.n_train or (20000 if cuda else 4000), n_pixels, 0)
    for preset in presets:
        cfg = cfg_for(preset, n_pixels)
        batch = VIT_PRESETS[preset]["batch_size"]
        small = preset == "vit-paper" and not cuda
        steps = args.steps or (2 if small else 8 if not cuda else 50)
        warmup = 1 if small else (3 if not cuda else 20)
        if small:
            batch = 32
        s_ref, s_new = time_alternating(
            [research_stepper(cfg, flux, error, y, device, batch),
             logg_stepper(cfg, flux, error, y, device, batch)], device, steps, warmup,
            rounds=2 if small else 3)
        row = {"preset": preset, "batch": batch, "steps": steps,
               "research_samples_per_s": batch / s_ref, "logg_samples_per_s": batch / s_new,
               "speedup": s_ref / s_new,
               "logg_mode": "bf16+compile+SDPA, resident" if cuda else "fp32 eager SDPA, resident"}
        results["throughput"].append(row)
        print(f"{preset:10s} batch {batch:4d}: research {row['research_samples_per_s']:9.1f} "
              f"samples/s | logg {row['logg_samples_per_s']:9.1f} samples/s | "
              f"ratio {row['speedup']:.2f}x", flush=True)
    race_preset = "vit-paper" if cuda else "vit-cpu"
    budget = args.budget_s or (120.0 if cuda else 60.0)
    n_tr = args.n_train or (20000 if cuda else 4000)
    Xte_clean, Ete, yte = toy_spectra(2000 if cuda else 1000, n_pixels, 1)
    Xte = Xte_clean + np.random.default_rng(2).standard_normal(Xte_clean.shape).astype(
        np.float32) * Ete
    data = (flux[:n_tr], error[:n_tr], y[:n_tr], Xte, yte)
    p = VIT_PRESETS[race_preset]
    epochs_hint = 20 if cuda else 10
    r_ref, st_ref = race_research(cfg_for(race_preset, n_pixels), data, device,
                                  p["batch_size"], budget, p["lr"], epochs_hint)
    r_new, st_new = race_logg(race_preset, data, device, p["batch_size"], budget, p["lr"],
                              epochs_hint)
    results["race"].append({"preset": race_preset, "budget_s": budget, "n_train": n_tr,
                            "n_test": len(yte), "research_r2": r_ref, "research_steps": st_ref,
                            "logg_r2": r_new, "logg_epochs_completed": st_new})
    print(f"R² within {budget:.0f} s ({race_preset}, {n_tr} toy spectra): research "
          f"{r_ref:.3f} ({st_ref} steps) | logg {r_new:.3f}", flush=True)
    _write(results)


def _write(results: dict) -> None:
    OUT.parent.mkdir(parents=True, exist_ok=True)
    write_json(OUT.with_suffix(".json"), results, safe=False)
    lines = [f"# ViT throughput ({results['device']}, torch {results['torch']}, "
             f"{results['threads']} threads{', ' + results['gpu'] if results['gpu'] else ''})",
             "", "| preset | batch | research samples/s | logg samples/s | ratio |",
             "|---|---|---|---|---|"]
    for r in results["throughput"]:
        lines.append(f"| {r['preset']} | {r['batch']} | {r['research_samples_per_s']:.1f} | "
                     f"{r['logg_samples_per_s']:.1f} | {r['speedup']:.2f}x |")
    for r in results["race"]:
        lines += ["", f"R² within {r['budget_s']:.0f} s ({r['preset']}, {r['n_train']} toy "
                  f"spectra, {r['n_test']} frozen-noise test): research {r['research_r2']:.3f}"
                  f" vs logg {r['logg_r2']:.3f}"]
    write_text(OUT.with_suffix(".md"), "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
