"""Named hyper-parameter sets for the ViT (first = default on CPU).

`vit-paper` is the research's best 1M model ("Run 1", docs/vit.md, Presets):
p16/s16, hidden 256, 6 layers, 8 heads, MLP 1024, Conv1D tokenizer, learned PE, MSE on
z-scored labels, AdamW 3e-4 / wd 0.01, cosine to 1e-5, batch 256, 200 epochs, clip 0.5.
4,809,729 parameters (the research's 4,875,521 minus HF's unused 65,792-parameter pooler).

`vit-cpu` is small enough to learn something in minutes on 2 CPU cores: 64-pixel patches
(64 tokens), hidden 64, 2 layers, 4 heads (~0.1M parameters), higher lr, no dropout.
"""

from __future__ import annotations

# head, experts, load-balancing weight and labels: `--set head=moe`, `--set
# targets=log_g,T_eff,M_H` (log g stays the scored label; the others land in run_facts)
_HEAD = {"head": "linear", "n_experts": 4, "moe_aux": 0.01, "targets": ["log_g"]}

VIT_PRESETS: dict[str, dict] = {
    "vit-cpu": {
        "patch_size": 64, "stride": 64, "hidden": 64, "layers": 2, "heads": 4,
        "mlp_ratio": 4, "tokenizer": "C1D", "pos_encoding": "learned", "input_norm": "center",
        "dropout": 0.0, "attn_dropout": 0.0, "loss": "mse", "lr": 1e-3,
        "weight_decay": 0.01, "batch_size": 128, "epochs": 20, "warmup_frac": 0.05,
        "min_lr": 1e-5, "grad_clip": 0.5, **_HEAD,
    },
    "vit-paper": {
        "patch_size": 16, "stride": 16, "hidden": 256, "layers": 6, "heads": 8,
        "mlp_ratio": 4, "tokenizer": "C1D", "pos_encoding": "learned", "input_norm": "center",
        "dropout": 0.1, "attn_dropout": 0.1, "loss": "mse", "lr": 3e-4,
        "weight_decay": 0.01, "batch_size": 256, "epochs": 200, "warmup_frac": 0.05,
        "min_lr": 1e-5, "grad_clip": 0.5, **_HEAD,
    },
}
# the same small ViT with a mixture-of-experts head (4 experts, soft routing on CLS)
VIT_PRESETS["vit-moe-cpu"] = {**VIT_PRESETS["vit-cpu"], "head": "moe"}
