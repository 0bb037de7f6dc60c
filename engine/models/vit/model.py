"""SpecViT: a 1D Vision Transformer for spectra, the whole model in one file.

Spectrum (B, L) -> patch tokens (B, N, D) -> [CLS] + tokens (B, N+1, D) -> (+ learned PE)
-> pre-LN encoder blocks (SDPA attention, optional RoPE on q/k) -> final LayerNorm
-> linear head on the CLS token -> (B, n_targets) in z-scored label units.

Faithful to the research model (docs/vit.md, Architecture) with three deliberate changes:
  * no HF pooler (it was instantiated but unused: 65,792 dead parameters);
  * CLS token and learned positional table start at trunc-normal std 0.02 instead of
    torch.randn (std 1), which swamped the patch embeddings at the first steps;
  * LayerNorm eps 1e-6 instead of HF's 1e-12 (same result in fp32, safer in bf16);
  * optional input centring (`in_mean`, the training set's per-pixel mean flux): with a
    continuum of ~1 every patch token is dominated by the same W·1 vector and small lines
    barely move it after LayerNorm; centring removes that common component.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

TOKENIZERS = ("C1D", "SW")
HEADS = ("linear", "moe")
POS_ENCODINGS = ("none", "learned", "rope")


@dataclass(frozen=True)
class ViTConfig:
    """Architecture hyper-parameters (frozen; built by the estimator from its params)."""

    n_pixels: int = 4096
    patch_size: int = 16
    stride: int = 16
    hidden: int = 256
    layers: int = 6
    heads: int = 8
    mlp_ratio: int = 4
    tokenizer: str = "C1D"        # "C1D" Conv1d patches | "SW" unfold + Linear
    pos_encoding: str = "learned"  # "none" | "learned" | "rope"
    dropout: float = 0.1
    attn_dropout: float = 0.1
    n_targets: int = 1
    rope_base: float = 10000.0
    heteroscedastic: bool = False  # head also outputs log σ² per target (loss=beta_nll)
    head: str = "linear"           # "linear" | "moe" (engine/models/vit/moe_head.py)
    n_experts: int = 4             # experts of the MoE head

    def __post_init__(self) -> None:
        if self.tokenizer not in TOKENIZERS:
            raise ValueError(f"tokenizer must be one of {TOKENIZERS}, got {self.tokenizer!r}")
        if self.pos_encoding not in POS_ENCODINGS:
            raise ValueError(f"pos_encoding must be one of {POS_ENCODINGS}, "
                             f"got {self.pos_encoding!r}")
        if self.head not in HEADS:
            raise ValueError(f"head must be one of {HEADS}, got {self.head!r}")
        if self.hidden % self.heads:
            raise ValueError(f"hidden {self.hidden} is not divisible by heads {self.heads}")
        if self.pos_encoding == "rope" and (self.hidden // self.heads) % 2:
            raise ValueError("RoPE needs an even head dimension (hidden / heads)")
        if not 0 < self.patch_size <= self.n_pixels or self.stride < 1:
            raise ValueError(f"bad patch_size/stride {self.patch_size}/{self.stride} "
                             f"for {self.n_pixels} pixels")

    @property
    def n_patches(self) -> int:
        """Number of patch tokens (without CLS). C1D floors, SW ceils and zero-pads."""
        span = self.n_pixels - self.patch_size
        if self.tokenizer == "C1D":
            return span // self.stride + 1
        return math.ceil(span / self.stride) + 1

    def to_dict(self) -> dict:
        return asdict(self)


# ---------------------------------------------------------------------------- tokenizers

class Conv1DTokenizer(nn.Module):
    """Conv1d(1, D, P, stride S): (B, L) -> (B, N, D) with N = floor((L-P)/S) + 1."""

    def __init__(self, cfg: ViTConfig) -> None:
        super().__init__()
        self.proj = nn.Conv1d(1, cfg.hidden, kernel_size=cfg.patch_size, stride=cfg.stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x.unsqueeze(1)).transpose(1, 2)  # (B,1,L) -> (B,D,N) -> (B,N,D)


class SlidingWindowTokenizer(nn.Module):
    """unfold(P, S) -> Linear(P, D); right zero-pad so N = ceil((L-P)/S) + 1 windows."""

    def __init__(self, cfg: ViTConfig) -> None:
        super().__init__()
        self.p, self.s, self.n = cfg.patch_size, cfg.stride, cfg.n_patches
        self.pad = (self.n - 1) * self.s + self.p - cfg.n_pixels  # >= 0 pixels to append
        self.proj = nn.Linear(cfg.patch_size, cfg.hidden)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.pad:
            x = F.pad(x, (0, self.pad))                          # (B, L + pad)
        return self.proj(x.unfold(1, self.p, self.s))           # (B, N, P) -> (B, N, D)


# ---------------------------------------------------------------------------- RoPE

def rope_tables(n_pos: int, head_dim: int, base: float) -> tuple[torch.Tensor, torch.Tensor]:
    """cos/sin tables (n_pos, head_dim), rotate-half layout cat([freqs, freqs])."""
    inv = 1.0 / base ** (torch.arange(0, head_dim, 2, dtype=torch.float32) / head_dim)
    freqs = torch.outer(torch.arange(n_pos, dtype=torch.float32), inv)  # (T, hd/2)
    emb = torch.cat([freqs, freqs], dim=-1)                             # (T, hd)
    return emb.cos(), emb.sin()


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """x (B, H, T, hd) rotated by position; CLS is position 0 (identity rotation)."""
    x1, x2 = x.chunk(2, dim=-1)
    rotated = torch.cat([-x2, x1], dim=-1)
    return (x * cos + rotated * sin).to(x.dtype)


# ---------------------------------------------------------------------------- encoder

class Attention(nn.Module):
    """Multi-head self-attention through F.scaled_dot_product_attention (flash on CUDA)."""

    def __init__(self, cfg: ViTConfig) -> None:
        super().__init__()
        self.heads = cfg.heads
        self.qkv = nn.Linear(cfg.hidden, 3 * cfg.hidden)
        self.out = nn.Linear(cfg.hidden, cfg.hidden)
        self.attn_dropout = cfg.attn_dropout
        self.drop = nn.Dropout(cfg.dropout)

    def forward(self, x: torch.Tensor, rope: tuple[torch.Tensor, torch.Tensor] | None
                ) -> torch.Tensor:
        B, T, D = x.shape
        q, k, v = self.qkv(x).view(B, T, 3, self.heads, D // self.heads).permute(2, 0, 3, 1, 4)
        if rope is not None:                                     # q, k: (B, H, T, hd)
            q, k = apply_rope(q, *rope), apply_rope(k, *rope)
        p = self.attn_dropout if self.training else 0.0
        y = F.scaled_dot_product_attention(q, k, v, dropout_p=p)  # (B, H, T, hd)
        return self.drop(self.out(y.transpose(1, 2).reshape(B, T, D)))


class MLP(nn.Module):
    """Linear(D, 4D) -> GELU -> Linear(4D, D) -> dropout."""

    def __init__(self, cfg: ViTConfig) -> None:
        super().__init__()
        self.fc1 = nn.Linear(cfg.hidden, cfg.mlp_ratio * cfg.hidden)
        self.fc2 = nn.Linear(cfg.mlp_ratio * cfg.hidden, cfg.hidden)
        self.drop = nn.Dropout(cfg.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.drop(self.fc2(F.gelu(self.fc1(x))))


class Block(nn.Module):
    """Pre-LN transformer block: h += Attn(LN(h)); h += MLP(LN(h))."""

    def __init__(self, cfg: ViTConfig) -> None:
        super().__init__()
        self.ln1 = nn.LayerNorm(cfg.hidden, eps=1e-6)
        self.attn = Attention(cfg)
        self.ln2 = nn.LayerNorm(cfg.hidden, eps=1e-6)
        self.mlp = MLP(cfg)

    def forward(self, x: torch.Tensor, rope=None) -> torch.Tensor:
        x = x + self.attn(self.ln1(x), rope)
        return x + self.mlp(self.ln2(x))


# ---------------------------------------------------------------------------- model

class SpecViT(nn.Module):
    """(B, n_pixels) flux -> (B, n_targets) z-scored predictions; with `heteroscedastic`
    (B, 2·n_targets): the means, then log σ² per target (z units)."""

    def __init__(self, cfg: ViTConfig) -> None:
        super().__init__()
        self.cfg = cfg
        tok = Conv1DTokenizer if cfg.tokenizer == "C1D" else SlidingWindowTokenizer
        self.tokenizer = tok(cfg)
        self.cls = nn.Parameter(torch.zeros(1, 1, cfg.hidden))
        n_pos = cfg.n_patches + 1
        self.pos = (nn.Parameter(torch.zeros(1, n_pos, cfg.hidden))
                    if cfg.pos_encoding == "learned" else None)
        if cfg.pos_encoding == "rope":
            cos, sin = rope_tables(n_pos, cfg.hidden // cfg.heads, cfg.rope_base)
            self.register_buffer("rope_cos", cos, persistent=False)
            self.register_buffer("rope_sin", sin, persistent=False)
        # per-pixel mean of the clean training flux, subtracted from the input (zeros = off);
        # a buffer, so it travels with the state_dict and predict applies it.
        self.register_buffer("in_mean", torch.zeros(cfg.n_pixels))
        self.drop = nn.Dropout(cfg.dropout)
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.layers))
        self.ln_f = nn.LayerNorm(cfg.hidden, eps=1e-6)
        n_out = cfg.n_targets * (2 if cfg.heteroscedastic else 1)
        if cfg.head == "moe":
            from .moe_head import MoEHead
            self.head = MoEHead(cfg.hidden, n_out, cfg.n_experts)
        else:
            self.head = nn.Linear(cfg.hidden, n_out)
        self.apply(_init_weights)
        if cfg.head == "moe":
            self.head.reset_parameters()    # experts: He init in, zeros out (moe_head.py)
        nn.init.trunc_normal_(self.cls, std=0.02)
        if self.pos is not None:
            nn.init.trunc_normal_(self.pos, std=0.02)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.tokenizer(x - self.in_mean)                     # (B, L) -> (B, N, D)
        cls = self.cls.expand(h.shape[0], -1, -1).to(h.dtype)    # (B, 1, D)
        h = torch.cat([cls, h], dim=1)                           # (B, N+1, D)
        if self.pos is not None:
            h = h + self.pos
        h = self.drop(h)
        rope = (self.rope_cos, self.rope_sin) if self.cfg.pos_encoding == "rope" else None
        for block in self.blocks:
            h = block(h, rope)
        # the head runs in fp32 even under bf16 autocast: bf16 keeps ~3 digits, which
        # would quantise predictions at ~0.005 dex
        with torch.autocast(x.device.type, enabled=False):
            return self.head(self.ln_f(h[:, 0].float()))         # (B, n_targets)

    def no_decay_names(self) -> set[str]:
        """Parameters kept out of weight decay: biases, LayerNorms, CLS, positional table."""
        names = set()
        for name, p in self.named_parameters():
            if p.ndim < 2 or name in ("cls", "pos"):
                names.add(name)
        return names


def _init_weights(m: nn.Module) -> None:
    """Linear and patch Conv1d: trunc-normal std 0.02, zero bias; LayerNorm: 1 / 0."""
    if isinstance(m, (nn.Linear, nn.Conv1d)):
        nn.init.trunc_normal_(m.weight, std=0.02)
        if m.bias is not None:
            nn.init.zeros_(m.bias)
    elif isinstance(m, nn.LayerNorm):
        nn.init.ones_(m.weight)
        nn.init.zeros_(m.bias)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
