"""A mixture-of-experts regression head for SpecViT (issue 13, the seed's first next step).

The gate is a linear layer on the final CLS token with a softmax (soft routing: every
expert runs, outputs are mixed by the gate weights, so the whole thing trains end to end);
each expert is a small MLP head (hidden → hidden/2 → outputs). The load-balancing loss is
the Switch Transformer's (Fedus et al. 2021, after Shazeer et al. 2017): K · Σ_k f_k · P_k
with f_k the fraction of the batch whose top gate is k and P_k the mean gate probability
of k; it is 1 for a uniform router and K when one expert takes everything. The model keeps
the last batch's value in `aux_loss`; the trainer adds `moe_aux` × it to the loss."""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F


class MoEHead(nn.Module):
    """(B, D) CLS features → (B, n_out), mixing K expert heads by a softmax gate."""

    def __init__(self, hidden: int, n_out: int, n_experts: int) -> None:
        super().__init__()
        if n_experts < 2:
            raise ValueError(f"a MoE head needs ≥ 2 experts, got {n_experts}")
        inner = max(8, hidden // 2)
        self.gate = nn.Linear(hidden, n_experts)
        self.experts = nn.ModuleList(
            nn.Sequential(nn.Linear(hidden, inner), nn.GELU(), nn.Linear(inner, n_out))
            for _ in range(n_experts))
        self.n_experts = n_experts
        self.aux_loss = torch.zeros(())
        self.last_gates: torch.Tensor | None = None

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        probs = F.softmax(self.gate(h), dim=-1)                          # (B, K)
        outs = torch.stack([e(h) for e in self.experts], dim=1)          # (B, K, n_out)
        self.aux_loss = load_balancing_loss(probs)
        self.last_gates = probs.detach()
        return (probs.unsqueeze(-1) * outs).sum(1)


def load_balancing_loss(probs: torch.Tensor) -> torch.Tensor:
    """K · Σ_k f_k · P_k (Switch Transformer): f_k = share of rows whose argmax is k (no
    gradient), P_k = mean probability of k (gradient pushes the router to balance)."""
    k = probs.shape[-1]
    f = F.one_hot(probs.argmax(-1), k).float().mean(0)
    return k * (f * probs.mean(0)).sum()
