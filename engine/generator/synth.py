"""The batched forward model θ → normalised R≈5000 spectrum on the 4096 MR pixels.

θ columns: T_eff [K], log g [dex], [M/H], [α/M], [C/M] (PARAMS). Pipeline (docs/generator.md):
one-layer atmosphere → H⁻ continuum → Saha–Boltzmann η0 per line → Voigt profiles
added on the fine grid (one gather-free broadcast + one `index_add` per window-size bucket,
no per-line Python loops) → Milne–Eddington residual flux → × TiO/CN bands → × Planck →
LSF + rebin (fixed linear operator) → normalised so the median is 0.5 (pfsspec).

`normalise="median"` is the pfsspec normaliser used for stored data. `normalise="smooth"`
replaces the median by a smooth median (a Gaussian-weighted mean of the sorted fluxes
around the middle rank, ≈ median to ~1e-3) so the Jacobian spreads over many pixels
instead of one (docs/generator.md, The exact CRLB); the Fisher code uses it."""

from __future__ import annotations

import math
import warnings

import numpy as np
import torch

from engine.generator import grids
from engine.generator.atmosphere import layer
from engine.generator.linelist import LineList, LineStrengths, load_linelist
from engine.generator.lsf import FWHM_A, LsfRebin
from engine.generator.molecules import Molecules
from engine.generator.opacity import kappa_hminus
from engine.generator.profiles import LineProfile, bucket_opacity

PARAMS = ("T_eff", "log_g", "M_H", "a_M", "C_M")
BUCKET_CAPS = (1.2, 2.5, 5.0, 12.0, 25.0, 60.0)   # window half-widths (Å)
C2 = 1.4387769e8                                   # hc/k in Å·K
C_BETA = 1.0                                       # ME source-function gradient scale


class ForwardModel(torch.nn.Module):
    """`model(theta) -> flux (B, 4096)`. Buffers live in `dtype` (float32 for generation,
    float64 for Fisher); θ is cast to it. `analytic_jvp=True` routes the line opacity
    through `profiles.LineProfile` (same values, cheaper `jacfwd`)."""

    def __init__(self, lines: LineList | None = None, *, fwhm: float = FWHM_A,
                 normalise: str = "median", dtype: torch.dtype = torch.float32,
                 analytic_jvp: bool = False) -> None:
        super().__init__()
        lines = load_linelist() if lines is None else lines
        if normalise not in ("median", "smooth"):
            raise ValueError("normalise must be 'median' or 'smooth'")
        self.normalise = normalise
        self.analytic_jvp = analytic_jvp   # LineProfile's jvp rule (Fisher); off for compile
        self.strengths = LineStrengths(lines)
        fine = grids.fine_wave()
        self.register_buffer("fine_wave", torch.as_tensor(fine))
        self.register_buffer("wave", torch.as_tensor(grids.wave()))
        self.molecules = Molecules(fine)
        self.lsf = LsfRebin(fwhm)
        self._buckets = self._make_buckets(lines, fine)
        self.cost = sum(int(getattr(self, f"b{k}_idx").numel()) for k in self._buckets)
        self.to(dtype)
        self.dtype = dtype

    def _make_buckets(self, lines: LineList, fine: np.ndarray):
        buckets, lo = [], 0.0
        for k, cap in enumerate(BUCKET_CAPS):
            sel = np.where((lines.halfwidth > lo) & (lines.halfwidth <= cap))[0]
            lo = cap
            if sel.size == 0:
                continue
            hw = int(math.ceil(cap / grids.FINE_STEP))
            centre = np.round((lines.wave_vac[sel] - grids.FINE_START) / grids.FINE_STEP - 0.5)
            idx = centre.astype(int)[:, None] + np.arange(-hw, hw + 1)[None, :]
            inside = (idx >= 0) & (idx < grids.N_FINE)
            idx_c = np.clip(idx, 0, grids.N_FINE - 1)
            dlam = np.where(inside, fine[idx_c] - lines.wave_vac[sel][:, None], 1e4)
            idx = np.where(inside, idx, grids.N_FINE)            # sink column
            # buffers, so `.to(device)` moves them with the model (engine.devices)
            self.register_buffer(f"b{k}_sel", torch.as_tensor(sel, dtype=torch.long))
            self.register_buffer(f"b{k}_idx", torch.as_tensor(idx.reshape(-1), dtype=torch.long))
            self.register_buffer(f"b{k}_dlam", torch.as_tensor(dlam))
            buckets.append(k)
        return buckets

    def line_opacity(self, theta: torch.Tensor) -> torch.Tensor:
        """η(λ) = Σ_i η0_i H(a_i, v) on the fine grid, (B, N_fine)."""
        t_l, log_pg, log_pe = layer(theta)
        lam = self.strengths.lam.to(theta.dtype)
        kappa = kappa_hminus(lam, t_l, log_pe)
        eta0, a, dlam_d = self.strengths(theta, t_l, log_pg, log_pe, kappa)
        eta = 0.0
        fn = LineProfile.apply if self.analytic_jvp else bucket_opacity
        for k in self._buckets:
            sel = getattr(self, f"b{k}_sel")
            eta = eta + fn(eta0[:, sel], a[:, sel], dlam_d[:, sel], getattr(self, f"b{k}_dlam"),
                           getattr(self, f"b{k}_idx"), grids.N_FINE + 1)
        return eta[:, :-1]

    def continuum_flux(self, theta: torch.Tensor, r: torch.Tensor) -> torch.Tensor:
        lam = self.fine_wave.to(theta.dtype)
        x = C2 / (lam[None, :] * theta[:, :1])
        planck = (lam[None, :] / 8000.0) ** -5 / torch.expm1(x)
        return planck * r

    def residual(self, theta: torch.Tensor) -> torch.Tensor:
        """Line residual r = F/F_c on the fine grid (Milne–Eddington; no molecules, no LSF),
        (B, N_fine): the same call as generator v2's `residual`."""
        theta = theta.to(self.dtype)
        eta = self.line_opacity(theta)
        lam = self.fine_wave.to(theta.dtype)
        beta = (2.0 / 3.0) * C_BETA * C2 / (lam[None, :] * theta[:, :1])
        return (1.0 + beta / (1.0 + eta)) / (1.0 + beta)

    def unnormalised(self, theta: torch.Tensor) -> torch.Tensor:
        """F_λ on the 4096 pixels, arbitrary units (B, 4096)."""
        r = self.residual(theta) * torch.exp(-self.molecules(theta))
        return self.lsf(self.continuum_flux(theta, r))

    def forward(self, theta: torch.Tensor) -> torch.Tensor:
        return pfsspec_normalise(self.unnormalised(theta.to(self.dtype)), self.normalise)


def pfsspec_normalise(flux: torch.Tensor, normalise: str = "median") -> torch.Tensor:
    """Median set to 0.5, as pfsspec: numpy's median ("median": the mean of the two middle
    values, not torch.median's lower one) or the differentiable `smooth_median`."""
    if normalise == "median":
        scale = torch.quantile(flux, 0.5, dim=1, keepdim=True)
    else:
        scale = smooth_median(flux)
    return flux * (0.5 / scale)


def smooth_median(x: torch.Tensor, width: float = 0.03) -> torch.Tensor:
    """Gaussian-rank-weighted mean of the sorted row values (B, 1); width as a fraction of
    the row length. Continuous and differentiable almost everywhere with derivative jumps
    of order 1/(width·K), unlike the median whose derivative flows through one pixel."""
    k = x.shape[1]
    ranks = (torch.arange(k, dtype=x.dtype, device=x.device) - (k - 1) / 2.0) / (width * k)
    w = torch.exp(-0.5 * ranks * ranks)
    w = w / w.sum()
    return (torch.sort(x, dim=1).values * w).sum(1, keepdim=True)


class BatchSynth:
    """Noiseless float32 spectra for θ arrays, in fixed-size batches (the last one padded)
    so that an optional `torch.compile` sees one static shape. Falls back to eager when
    compilation fails. `device`: where the model computes (engine.devices names: cpu,
    cuda, cuda:N, auto); θ goes there per batch and the spectra come back as numpy."""

    model_class: type[torch.nn.Module] = ForwardModel

    def __init__(self, batch: int = 64, *, compile: bool = False, threads: int | None = None,
                 device: str = "cpu"):
        from engine.devices import resolve_device

        self.batch = int(batch)
        self.device = resolve_device(device)
        self.model = self.model_class().to(self.device)
        self.compiled = False
        self._fn = self.model
        if threads:
            torch.set_num_threads(threads)
        if compile:
            try:
                # inductor warns that complex ops (the Voigt profile) stay eager: expected,
                # and not something a user generating a dataset can act on
                warnings.filterwarnings("ignore", message=".*does not support code generation "
                                        "for complex operators.*")
                fn = torch.compile(self.model, dynamic=False)
                probe = torch.tensor([4800.0, 3.0, -0.5, 0.1, 0.0]).expand(self.batch, 5)
                with torch.no_grad():
                    fn(probe.to(self.device))
                self._fn, self.compiled = fn, True
            except Exception:  # noqa: BLE001 — any compiler failure → eager, same numbers
                self._fn = self.model

    def __call__(self, theta: np.ndarray) -> np.ndarray:
        theta = np.asarray(theta, dtype=np.float32)
        out = np.empty((len(theta), grids.N_PIXELS), dtype=np.float32)
        with torch.no_grad():
            for s in range(0, len(theta), self.batch):
                chunk = theta[s:s + self.batch]
                pad = self.batch - len(chunk)
                if pad:
                    chunk = np.concatenate([chunk, np.repeat(chunk[-1:], pad, 0)])
                f = self._fn(torch.from_numpy(chunk).to(self.device))
                out[s:s + self.batch] = f[:self.batch - pad].cpu().numpy()
        return out
