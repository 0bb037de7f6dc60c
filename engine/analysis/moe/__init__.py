"""Mixtures of experts (docs/analyses.md).

- `assign`: bin assignment by the true label (Teff×[M/H]) or true L2 SNR.
- `experts`: the per-bin experts and the global model.
- `oracle`: oracle (true-label) routing, per-bin tables, mask-aligned overall scores.
- `gate_features`, `gates`: what a deployed gate sees, and the gates themselves.
- `rho`: oracle-gain retention ρ and when it is undefined.
- `pipeline`: `moe oracle` / `moe gate` end to end, returning an analysis result.
"""
