"""SpecViT architecture: shapes, parameter counts, and attention/RoPE against oracles."""

from __future__ import annotations

import itertools
import math

import pytest
import torch
import torch.nn.functional as F

from engine.models.vit.model import (Attention, SpecViT, ViTConfig, apply_rope,
                                     count_parameters, rope_tables)
from engine.models.vit.presets import VIT_PRESETS


def _tiny(**kw) -> ViTConfig:
    base = dict(n_pixels=256, patch_size=16, stride=16, hidden=32, layers=2, heads=4,
                dropout=0.0, attn_dropout=0.0)
    base.update(kw)
    return ViTConfig(**base)


@pytest.mark.parametrize("tok,pe,targets",
                         list(itertools.product(["C1D", "SW"], ["none", "learned", "rope"],
                                                [1, 3])))
def test_forward_shapes_every_tokenizer_and_encoding(tok, pe, targets):
    cfg = _tiny(tokenizer=tok, pos_encoding=pe, stride=7, n_targets=targets)
    model = SpecViT(cfg)
    out = model(torch.randn(5, 256))
    assert out.shape == (5, targets)
    tokens = model.tokenizer(torch.randn(5, 256))
    # C1D floors, SW ceils and zero-pads: (256-16)/7 = 34.3 -> 35 vs 36 windows
    assert tokens.shape == (5, 35 if tok == "C1D" else 36, 32)
    assert cfg.n_patches == tokens.shape[1]


def test_sliding_window_pads_with_zeros_and_matches_manual_windows():
    cfg = _tiny(tokenizer="SW", stride=7)
    tok = SpecViT(cfg).tokenizer
    x = torch.randn(2, 256)
    padded = torch.cat([x, torch.zeros(2, (36 - 1) * 7 + 16 - 256)], dim=1)
    manual = torch.stack([padded[:, i * 7:i * 7 + 16] for i in range(36)], dim=1)
    torch.testing.assert_close(tok(x), tok.proj(manual))


def test_vit_paper_parameter_count_matches_research_minus_pooler():
    p = VIT_PRESETS["vit-paper"]
    cfg = ViTConfig(patch_size=p["patch_size"], stride=p["stride"], hidden=p["hidden"],
                    layers=p["layers"], heads=p["heads"], tokenizer=p["tokenizer"],
                    pos_encoding=p["pos_encoding"])
    n = count_parameters(SpecViT(cfg))
    pooler = 256 * 256 + 256
    assert n == 4_809_729
    assert n + pooler == 4_875_521          # docs/vit.md, Presets


def test_attention_equals_manual_softmax_attention():
    torch.manual_seed(0)
    cfg = _tiny()
    attn = Attention(cfg).eval()
    x = torch.randn(3, 10, 32)
    q, k, v = attn.qkv(x).split(32, dim=-1)
    heads = lambda t: t.view(3, 10, 4, 8).transpose(1, 2)  # noqa: E731
    q, k, v = heads(q), heads(k), heads(v)
    w = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(8), dim=-1)
    ref = attn.out((w @ v).transpose(1, 2).reshape(3, 10, 32))
    torch.testing.assert_close(attn(x, None), ref, atol=1e-5, rtol=1e-5)


def test_rope_scores_depend_only_on_relative_position_and_cls_is_unrotated():
    cos, sin = rope_tables(20, 8, 10000.0)
    q, k = torch.randn(8), torch.randn(8)
    rot = lambda t, pos: apply_rope(t.view(1, 1, 1, 8), cos[pos], sin[pos]).view(8)  # noqa
    s1 = rot(q, 7) @ rot(k, 3)
    s2 = rot(q, 14) @ rot(k, 10)
    torch.testing.assert_close(s1, s2, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(rot(q, 0), q)            # CLS = position 0
    assert not torch.allclose(rot(q, 1) @ rot(k, 0), q @ k)


def test_no_weight_decay_on_biases_norms_cls_and_positions():
    model = SpecViT(_tiny())
    skip = model.no_decay_names()
    assert {"cls", "pos", "head.bias", "ln_f.weight", "blocks.0.ln1.bias"} <= skip
    assert "blocks.0.attn.qkv.weight" not in skip and "tokenizer.proj.weight" not in skip
    assert all(model.get_parameter(n).ndim >= 2 for n, _ in model.named_parameters()
               if n not in skip)


def test_small_init_for_cls_and_positions():
    model = SpecViT(_tiny())
    assert model.cls.std() < 0.05 and model.pos.std() < 0.05


def test_bad_architecture_is_rejected():
    with pytest.raises(ValueError, match="divisible"):
        _tiny(hidden=30)
    with pytest.raises(ValueError, match="tokenizer"):
        _tiny(tokenizer="CNN2D")
    assert F.gelu(torch.zeros(1)).item() == 0.0


def test_head_stays_fp32_under_bf16_autocast():
    model = SpecViT(_tiny()).eval()
    x = torch.randn(4, 256)
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        out = model(x)
    assert out.dtype == torch.float32
    torch.testing.assert_close(out, model(x).detach(), atol=0.05, rtol=0.05)
