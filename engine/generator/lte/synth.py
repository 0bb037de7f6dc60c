"""The batched forward model θ → normalised R≈5000 spectrum on the 4096 MR pixels
(generator v2: depth-resolved LTE synthesis).

θ columns: T_eff [K], log g [dex], [M/H], [α/M], [C/M] (PARAMS). Pipeline:
atmosnet depth structure T, P_gas, P_e, ρ on 25 layers (atmosphere.py) → H ionisation
(Saha, Irwin U_H) and H₂ (dissociation equilibrium) → continuum opacity per layer on a 9.6 Å grid (opacity.py) → line
opacity per layer: Saha–Boltzmann strengths with Irwin partition functions and ABO/Unsöld
damping (linelist.py); Voigt cores within ±0.6 Å of every line on the 0.06 Å grid (one
broadcast Voigt + one `index_add`), Lorentzian far wings (to ±60 Å) as one FFT convolution
of the per-line wing strengths on the 0.12 Å grid; Stark-broadened Paschen lines with
Hummer–Mihalas level dissolution and the dissolved n = 3 pseudo-continuum (hydrogen.py) → τ_λ per layer and the emergent flux by Gauss–Legendre μ quadrature with a
linear-in-τ Planck source function (transfer.py) → × TiO/CN bands (molecules.py) →
LSF + rebin (fixed linear operator) → normalised so the median is 0.5 (pfsspec).

`normalise="median"` is the pfsspec normaliser used for stored data. `normalise="smooth"`
replaces the median by a smooth median (a Gaussian-weighted mean of the sorted fluxes
around the middle rank, ≈ median to ~1e-3) so the Jacobian spreads over many pixels
instead of one (GENERATOR.md §4 pitfall 2); the Fisher code uses it."""

from __future__ import annotations

import math

import numpy as np
import torch

from engine.generator.lte import grids
from engine.generator.synth import BatchSynth as _BatchSynthV1
from engine.generator.synth import PARAMS, pfsspec_normalise, smooth_median  # noqa: F401
from engine.generator.lte.atmosphere import (HE_PER_H, SYNTH_ROWS, Atmosphere,
                                             with_molecular_hydrogen)
from engine.generator.lte.hydrogen import Paschen, dissolved_n_eff, kappa_dissolved_n3
from engine.generator.lte.linelist import LineList, LineStrengths, load_linelist
from engine.generator.lsf import FWHM_A, LsfRebin
from engine.generator.molecules import Molecules
from engine.generator.lte.opacity import CHI_H, continuum
from engine.generator.profiles import bucket_opacity
from engine.generator.lte.species import load_partition_table
from engine.generator.lte.fused import coarse_to_fine, line_transfer
from engine.generator.lte.transfer import emergent_flux, optical_depth, planck

C2 = 1.4387769e8                                   # hc/k in Å·K
CORE_HALF_A = 0.6          # Voigt cores on the fine grid within ±0.6 Å of each line
WING_MAX_A = 60.0          # Lorentzian wings out to ±60 Å
CONT_PER_COARSE = 80       # continuum opacity grid: every 80th coarse point (9.6 Å)
# (star, layer) rows per block of the eager Voigt cores (ForwardModel.core_opacity):
# 16 × 3000 lines × 21 samples ≈ 1M floats per temporary
CORE_ROWS = 16
TRANSFER_STARS = 2        # stars per block of the eager formal solution (ForwardModel._transfer)
SUB_BATCH = 8              # stars per internal chunk: bounds memory (B·D·N_fine tensors)
# on a GPU (engine.devices) the CPU's cache blocking above only adds kernel launches: the
# cores and the formal solution run in one block per chunk, and a chunk holds this many
# stars (~3 GB of float32 temporaries at 64: the (B·D, lines × 21) core arrays dominate)
GPU_SUB_BATCH = 64
# the Fisher model's chunk: its fused kernel (fused.py) forms no (5 tangents, B, D, N_fine)
# tensor, so 16 stars (build.py's CRLB chunk) fit in ~1 GB and pay less per-op overhead
JVP_SUB_BATCH = 16
LN10 = math.log(10.0)
# dtype of the Fisher model's forward pass and jacfwd (physics.fisher_model); the Fisher
# sum Jᵀ Σ⁻¹ J and its inverse stay float64 (fisher.py). Why float32: it halves the memory
# traffic of the (5 tangents × B × D × N_fine) passes that dominate the CRLB (≈2× faster on
# CPU) and changes σ_CRLB(log g) by < 1e-4 relative against the float64 Jacobian
# (tests/test_lte_jacobian.py; bench/gen_v2_speed.py measures it on 32 stars).
JACOBIAN_DTYPE = torch.float32
PASCHEN_HALF_SYNTHE = 60.0     # Å: hydrogen="synthe" profiles reach the neighbours' centres


def _on_cpu(x: torch.Tensor) -> bool:
    return x.device.type == "cpu"


class ForwardModel(torch.nn.Module):
    """`model(theta) -> flux (B, 4096)`. Buffers live in `dtype` (float32 for generation,
    float64 for Fisher); θ is cast to it. `analytic_jvp=True` routes the line cores,
    optical depth and formal solution through `fused.LineTransfer` and the Paschen
    profiles through `hydrogen.PaschenProfile` (same values to rounding, a much cheaper
    `jacfwd`: forward-mode AD only)."""

    def __init__(self, lines: LineList | None = None, *, fwhm: float = FWHM_A,
                 normalise: str = "median", dtype: torch.dtype = torch.float32,
                 analytic_jvp: bool = False, rows=SYNTH_ROWS, hydrogen: str = "hm") -> None:
        super().__init__()
        lines = load_linelist() if lines is None else lines
        if normalise not in ("median", "smooth"):
            raise ValueError("normalise must be 'median' or 'smooth'")
        self.normalise = normalise
        self.analytic_jvp = analytic_jvp
        # `jacobian()` runs its line-transfer stage through torch.compile (build.py turns it
        # on for long CRLB passes: ~30 s to compile, then ~2× faster; same numbers to rounding)
        self.compile_jacobian = False
        self.atmosphere = Atmosphere(rows)
        self.strengths = LineStrengths(lines)
        fine = grids.fine_wave()
        step_c = grids.FINE_STEP * grids.COARSE_FACTOR
        coarse = grids.FINE_START + step_c * (np.arange(grids.N_FINE // grids.COARSE_FACTOR) + 0.5)
        n_cont = -(-len(coarse) // CONT_PER_COARSE) + 1
        cont = coarse[0] + step_c * CONT_PER_COARSE * np.arange(n_cont)
        if grids.COARSE_FACTOR != 2:
            raise ValueError("ForwardModel's coarse→fine upsampling assumes COARSE_FACTOR 2")
        t = lambda x: torch.as_tensor(np.asarray(x, dtype=np.float64))
        self.register_buffer("fine_wave", t(fine))
        self.register_buffer("wave", t(grids.wave()))
        self.register_buffer("cont_wave", t(cont))
        self.register_buffer("planck_scale", t((fine / 8000.0) ** -5))
        self.register_buffer("cont_w", t(np.arange(CONT_PER_COARSE) / CONT_PER_COARSE))
        self.register_buffer("cont_n_star", t(dissolved_n_eff(cont)))
        self._u_h = tuple(load_partition_table()[(1, 0)])
        self._core(lines, fine)
        self._wings(lines, coarse)
        # hydrogen="synthe": the BOSZ-like option of hydrogen_synthe.py (measurement only;
        # its wider window reaches the neighbouring lines' centres)
        self.paschen = (Paschen(coarse) if hydrogen == "hm" else
                        Paschen(coarse, half=PASCHEN_HALF_SYNTHE, mode=hydrogen))
        self.paschen.analytic_jvp = analytic_jvp and hydrogen == "hm"
        self.molecules = Molecules(fine)
        self.lsf = LsfRebin(fwhm, grids)
        self.to(dtype)
        self.dtype = dtype
        self.cost = int(self.core_idx.numel()) * len(self.atmosphere.rows)

    def _core(self, lines: LineList, fine: np.ndarray) -> None:
        hw = math.ceil(CORE_HALF_A / grids.FINE_STEP)
        centre = np.round((lines.wave_vac - grids.FINE_START) / grids.FINE_STEP - 0.5).astype(int)
        idx = centre[:, None] + np.arange(-hw, hw + 1)[None, :]
        inside = (idx >= 0) & (idx < grids.N_FINE)
        dl = fine[np.clip(idx, 0, grids.N_FINE - 1)] - lines.wave_vac[:, None]
        keep = inside & (np.abs(dl) <= CORE_HALF_A)
        self.register_buffer("core_dl", torch.as_tensor(np.where(keep, dl, 1e4)))
        self.register_buffer("core_idx", torch.as_tensor(np.where(keep, idx, grids.N_FINE).reshape(-1)))

    def _wings(self, lines: LineList, coarse: np.ndarray) -> None:
        """Splat weights of each line onto the coarse grid and the rfft of the wing kernel
        K(Δλ) = 1/Δλ² for CORE_HALF_A ≤ |Δλ| ≤ WING_MAX_A (the Voigt far wing per unit
        ℓ0·a·Δλ_D²/√π)."""
        step = coarse[1] - coarse[0]
        p = (lines.wave_vac - coarse[0]) / step
        i0 = np.floor(p).astype(np.int64)
        w1 = p - i0
        ok0 = (i0 >= 0) & (i0 < len(coarse))
        ok1 = (i0 + 1 >= 0) & (i0 + 1 < len(coarse))
        self.register_buffer("wing_i0", torch.as_tensor(np.where(ok0, i0, len(coarse))))
        self.register_buffer("wing_i1", torch.as_tensor(np.where(ok1, i0 + 1, len(coarse))))
        self.register_buffer("wing_w1", torch.as_tensor(w1))
        half = math.ceil(WING_MAX_A / step)
        n_fft = 1 << math.ceil(math.log2(len(coarse) + half + 1))
        j = np.arange(n_fft)
        off = np.where(j <= n_fft // 2, j, j - n_fft) * step
        k = np.where((np.abs(off) >= CORE_HALF_A) & (np.abs(off) <= WING_MAX_A),
                     1.0 / np.maximum(off * off, 1e-12), 0.0)
        kf = np.fft.rfft(k)
        self.n_fft, self.n_coarse = n_fft, len(coarse)
        self.register_buffer("wing_kre", torch.as_tensor(kf.real.copy()))
        self.register_buffer("wing_kim", torch.as_tensor(kf.imag.copy()))

    def _cont_to_coarse(self, x: torch.Tensor) -> torch.Tensor:
        """Linear interpolation from the continuum grid (every 80th coarse point) to the
        coarse grid, by broadcasting (no gathers)."""
        w = self.cont_w
        y = x[..., :-1, None] * (1.0 - w) + x[..., 1:, None] * w
        return y.reshape(*x.shape[:-1], -1)[..., :self.n_coarse]

    @staticmethod
    def _coarse_to_fine(c: torch.Tensor) -> torch.Tensor:
        return coarse_to_fine(c)

    def _wing_opacity(self, l0, a, dld) -> torch.Tensor:
        amp = l0 * a * dld * dld / math.sqrt(math.pi)                     # (B, D, N)
        b, d, _ = amp.shape
        comb = amp.new_zeros(b, d, self.n_fft)
        comb = comb.index_add(2, self.wing_i0, amp * (1.0 - self.wing_w1))
        comb = comb.index_add(2, self.wing_i1, amp * self.wing_w1)
        kernel = torch.complex(self.wing_kre, self.wing_kim)
        conv = torch.fft.irfft(torch.fft.rfft(comb, dim=-1) * kernel, n=self.n_fft, dim=-1)
        return conv[..., :self.n_coarse]

    def opacity_parts(self, theta: torch.Tensor):
        """(ℓ0, a, Δλ_D (B, D, lines), smooth opacity per gram on the coarse grid
        (B, D, N_coarse): continuum + Lorentzian far wings + Paschen, structure)."""
        s, kc, frac_hi, log_u_h, n_hi = self._continuum(theta)
        l0, a, dld = self.strengths(theta, s, n_hi)
        smooth = kc + self._wing_opacity(l0, a, dld) + self.paschen(s, frac_hi, log_u_h)
        return l0, a, dld, smooth, s

    def _continuum(self, theta: torch.Tensor):
        s, kc, frac_hi, log_u_h, n_hi = self.continuum_parts(theta)
        return s, self._cont_to_coarse(kc), frac_hi, log_u_h, n_hi

    def continuum_parts(self, theta: torch.Tensor):
        """(structure, continuum opacity per gram on the 9.6 Å grid (B, D, N_cont),
        n(H I)/n_H, log10 U(H I), n(H I)): the layer quantities the rest is built from."""
        s = self.atmosphere(theta)
        lnt = torch.log(s.t)
        log_u_h = self.strengths_log_u_h(lnt)
        log_rh = (-log_u_h + 2.5 * lnt / LN10 - (5040.0 / s.t) * CHI_H - 0.1762
                  - torch.log10(s.p_e))                                     # log n(H⁺)/n(H I)
        s, frac_hi = with_molecular_hydrogen(s, log_rh)                     # n(H I)/n_H
        n_hi = s.n_h * frac_hi
        kc = continuum(self.cont_wave, s.t, s.p_e, n_hi, s.n_e)
        if self.paschen.dissolution:                # n = 3 → dissolved states (hydrogen.py)
            kc = kc + n_hi[..., None] * kappa_dissolved_n3(self.cont_wave, self.cont_n_star, s.t,
                                                            n_hi, s.n_h * HE_PER_H, s.n_e)
        kc = kc / s.rho[..., None]
        return s, kc, frac_hi, log_u_h, n_hi

    def jacobian_inputs(self, theta: torch.Tensor):
        """The small per-layer arrays the opacity is built from (lte/jacobian.py
        differentiates these by `jacfwd` and the rest explicitly): θ, the continuum on its
        9.6 Å grid (B, D, N_cont), the Paschen strengths, Stark fractions r and half widths (B, D, 17), and
        RHOX, T, P_e, P_gas, n(H I) (B, D) (the line strengths' inputs)."""
        if self.paschen.mode != "hm":
            raise NotImplementedError("the explicit Jacobian covers hydrogen='hm' only")
        s, kc, frac_hi, log_u_h, n_hi = self.continuum_parts(theta)
        return (theta, kc, *self.paschen.params(s, frac_hi, log_u_h), s.rhox, s.t, s.p_e,
                s.p_gas, n_hi)

    def opacity(self, theta: torch.Tensor, lines: bool = True):
        """(χ per gram (B, D, N_fine), structure) for one chunk of stars; `lines=False`
        gives the continuum alone (for residual spectra and equivalent widths)."""
        if not lines:
            s, kc = self._continuum(theta)[:2]
            return self._coarse_to_fine(kc), s
        l0, a, dld, smooth, s = self.opacity_parts(theta)
        return self.core_opacity(l0, a, dld) + self._coarse_to_fine(smooth), s

    def core_opacity(self, l0, a, dld) -> torch.Tensor:
        """Voigt cores of every line on the fine grid, (B, D, N_fine). Eager, in blocks of
        CORE_ROWS (star, layer) rows: the ~14 elementwise passes of `bucket_opacity` then
        run on ~4 MB temporaries that stay in cache instead of 50 MB ones per pass (4× less
        CPU time on one thread; each row is computed exactly as before, so the values are
        bit-identical). Under torch.compile the one-block form, which inductor fuses."""
        b, d, n = l0.shape
        l0, a, dld = (x.reshape(b * d, n) for x in (l0, a, dld))
        rows = b * d if (torch.compiler.is_compiling() or not _on_cpu(l0)) else CORE_ROWS
        core = torch.cat([bucket_opacity(l0[i:i + rows], a[i:i + rows], dld[i:i + rows],
                                         self.core_dl, self.core_idx, grids.N_FINE + 1)[:, :-1]
                          for i in range(0, b * d, rows)])
        return core.reshape(b, d, -1)

    def strengths_log_u_h(self, lnt: torch.Tensor) -> torch.Tensor:
        """log10 U(H I) (Irwin polynomial in ln T)."""
        c = self._u_h
        out = torch.zeros_like(lnt) + c[5]
        for i in range(4, -1, -1):
            out = out * lnt + c[i]
        return out / LN10

    def fine_flux(self, theta: torch.Tensor, lines: bool = True, molecules: bool = True
                  ) -> torch.Tensor:
        """Emergent F_λ on the fine grid (arbitrary units), × molecular bands, (B, N_fine)."""
        if self.analytic_jvp and lines:
            l0, a, dld, smooth, s = self.opacity_parts(theta)
            flux = line_transfer(l0, a, dld, smooth, s.rhox, s.t, self.fine_wave,
                                 self.planck_scale, self.core_dl, self.core_idx)
        else:
            chi, s = self.opacity(theta, lines)
            flux = self._transfer(chi, s.rhox, s.t)
        return flux * torch.exp(-self.molecules(theta)) if molecules else flux

    def _transfer(self, chi: torch.Tensor, rhox: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """χ (B, D, N_fine) → emergent F (B, N_fine). Eager, TRANSFER_STARS stars at a time:
        the formal solution's ~20 passes over (D, N_fine) arrays then touch ~6 MB per
        temporary instead of 24 MB (1.7× less CPU time on one thread; per star the same
        operations, so bit-identical values). Under torch.compile one block (fused)."""
        step = chi.shape[0] if (torch.compiler.is_compiling() or not _on_cpu(chi)) \
            else TRANSFER_STARS
        parts = [emergent_flux(optical_depth(chi[i:i + step], rhox[i:i + step]),
                               planck(self.fine_wave, self.planck_scale, t[i:i + step]))
                 for i in range(0, chi.shape[0], step)]
        return parts[0] if len(parts) == 1 else torch.cat(parts)

    def residual(self, theta: torch.Tensor) -> torch.Tensor:
        """Atomic + hydrogen line residual F/F_c on the fine grid (no molecules, no LSF)."""
        theta = theta.to(self.dtype)
        return (self.fine_flux(theta, True, False) / self.fine_flux(theta, False, False))

    def unnormalised(self, theta: torch.Tensor) -> torch.Tensor:
        """F_λ on the 4096 pixels, arbitrary units (B, 4096)."""
        sub = (JVP_SUB_BATCH if self.analytic_jvp else SUB_BATCH) if _on_cpu(theta) \
            else GPU_SUB_BATCH
        parts = [self.lsf(self.fine_flux(theta[i:i + sub])) for i in range(0, theta.shape[0], sub)]
        return parts[0] if len(parts) == 1 else torch.cat(parts, 0)

    def forward(self, theta: torch.Tensor) -> torch.Tensor:
        return pfsspec_normalise(self.unnormalised(theta.to(self.dtype)), self.normalise)

    def jacobian(self, theta: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(μ (B, 4096), J (B, 4096, 5)) in the model's dtype, in chunks of JVP_SUB_BATCH
        stars: `lte.jacobian.explicit_jacobian` (the Fisher code's path when
        `analytic_jvp`; the same numbers as `jacfwd` through this model, faster)."""
        from engine.generator.lte.jacobian import explicit_jacobian

        parts = []
        for i in range(0, theta.shape[0], JVP_SUB_BATCH):
            th = theta[i:i + JVP_SUB_BATCH]
            n = th.shape[0]
            if self.compile_jacobian and n < JVP_SUB_BATCH:     # one shape: one compilation
                th = torch.cat([th, th[-1:].expand(JVP_SUB_BATCH - n, -1)])
            mu, jac = explicit_jacobian(self, th, self.compile_jacobian)
            parts.append((mu[:n], jac[:n]))
        if len(parts) == 1:
            return parts[0]
        return torch.cat([p[0] for p in parts]), torch.cat([p[1] for p in parts])


class BatchSynth(_BatchSynthV1):
    """v1's batching (fixed-size padded batches, optional torch.compile) over v2's model."""

    model_class = ForwardModel
