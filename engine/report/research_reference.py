"""The research's reference numbers, for the report's "comparison with the research" only.

Source: the research's master results summary (VIT-20251228-master-summary, 2025-12-28;
in this project /work/shared/seed/000_774b791f9b141b97.md), BOSZ synthetic spectra,
7100–8850 Å, mag 20.5–22.5, noise_level 1.0, scored on the research's `test_10k` (MoE
oracle on its 1000-row test set). These are THE RESEARCH'S numbers, never ours: this is the
one place in the engine where numbers are typed in by hand, and the report labels every
one of them as the research's reference value. Everything else in the report is read from
the results store."""

from __future__ import annotations

SOURCE = "master summary VIT-20251228-master-summary, 2025-12-28; BOSZ test_10k, noise 1.0"

# our model name → the research's; (model, train size) → (test R², test MAE)   [report §1]
MODEL_NAMES = {"vit": "ViT", "lgbm": "LightGBM", "ridge": "Ridge"}
SCALING = {
    ("vit", 1_000_000): (0.711, 0.372), ("vit", 500_000): (0.709, 0.383),
    ("vit", 200_000): (0.673, 0.415), ("vit", 100_000): (0.596, 0.472),
    ("vit", 50_000): (0.434, 0.575),
    ("lgbm", 1_000_000): (0.571, 0.584), ("lgbm", 500_000): (0.574, 0.579),
    ("lgbm", 100_000): (0.553, 0.599), ("lgbm", 50_000): (0.488, 0.647),
    ("ridge", 1_000_000): (0.500, 0.633), ("ridge", 500_000): (0.490, 0.638),
    ("ridge", 100_000): (0.475, 0.648),
}

# MoE oracle by L2-SNR bin label → (n_test, oracle R², global R², ΔR²)   [report §2.1]
MOE_SNR = {"H": (31, 0.704, 0.672, 0.032), "M": (292, 0.710, 0.614, 0.096),
           "L": (377, 0.511, 0.504, 0.007), "X": (300, 0.309, 0.252, 0.058)}

# MoE oracle by Teff×[M/H] bin (bin = 3·t + m) → (oracle R², global R², ΔR²)  [report §2.2]
MOE_TEFF_MH = {5: (0.874, 0.772, 0.103), 2: (0.847, 0.763, 0.084), 8: (0.825, 0.675, 0.150),
               1: (0.796, 0.650, 0.146), 7: (0.601, 0.547, 0.054), 4: (0.583, 0.545, 0.038),
               0: (0.543, 0.351, 0.193), 6: (0.447, 0.276, 0.171), 3: (0.307, 0.138, 0.169)}

# de-leakage strategy → (n_features, log g R², SNR R², passed)   [report §3]
DELEAKAGE = {"S0_baseline": (4096, 0.788, 0.974, False),
             "S2_template_scale": (2, -0.001, 0.808, True),
             "S3_quantiles_11": (11, 0.049, 0.814, True),
             "S4_snr_only": (1, 0.0, 0.805, True)}
