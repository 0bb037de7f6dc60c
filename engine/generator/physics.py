"""Which physics synthesises a dataset: the one-layer Milne–Eddington model (`me`, the
default, generator version 1.0) or the depth-resolved LTE synthesis over atmosnet model
atmospheres (`lte`, generator version 2.2, engine/generator/lte/; docs/generator-v2.md;
2.1 = 2.0 + measured radiative damping, 3000 lines, a 25-layer depth grid and H₂;
2.2 = 2.1 + hydrogen level dissolution (Hummer–Mihalas occupation probabilities, the
dissolved n = 3 pseudo-continuum) and quasi-static Δλ^{−5/2} Stark wings for the Paschen
lines).

Why both: v2 carries much more of the research data's gravity information (5-D R²_max
0.99 / 0.85 / 0.63 / 0.08 at i = 20 / 21.5 / 22 / 22.5 on 192 draws, generator 2.2, against
the research's 0.99 / 0.87 / 0.70 / 0.26; v1 0.98 / 0.78 / 0.47 / 0.00) but is ~10× slower to synthesise directly and still
slower per exact CRLB on 2 cores (bench/results/gen_v1_v2.json, gen_v2_speed.json;
snapped presets draw from the persistent node lattice, bench/results/gen_lattice.json).
So `data generate` keeps v1 unless told `--physics lte`, and the default preset (continuous
labels, exact synthesis) stays on v1; the research study (`logg-engine study research`,
`make study`) uses v2, whose lattice makes its snapped bosz-1m build faster than v1's
(engine.study.plan, `default_physics`). The version is part of every dataset's identity:
datasets built by the two never share a fingerprint."""

from __future__ import annotations

from importlib import import_module
from types import ModuleType

from engine.errors import SpecError

PHYSICS = {"me": "1.0", "lte": "2.2"}           # physics → generator version
# versions an older logg wrote, and their physics (2.0: v2 before the 3000-line list, the
# 25-layer depth grid, measured Γ_rad and H₂; docs/generator-v2.md, "Line strengths";
# 2.1: before level dissolution and quasi-static Paschen wings, "Paschen lines")
LEGACY_VERSIONS = {"2.0": "lte", "2.1": "lte"}
DEFAULT_PHYSICS = "me"
_SYNTH = {"me": "engine.generator.synth", "lte": "engine.generator.lte.synth"}


def check_physics(name: str) -> str:
    if name not in PHYSICS:
        raise SpecError(f"unknown physics {name!r}", key="physics",
                        hint=f"use one of: {', '.join(PHYSICS)} (docs/generator.md)")
    return name


def generator_version(physics: str = DEFAULT_PHYSICS) -> str:
    return PHYSICS[check_physics(physics)]


def physics_of_version(version: str | None) -> str:
    """The physics a dataset's manifest version names (old datasets: `me`)."""
    return next((p for p, v in PHYSICS.items() if v == version),
                LEGACY_VERSIONS.get(version or "", DEFAULT_PHYSICS))


def synth_module(physics: str = DEFAULT_PHYSICS) -> ModuleType:
    """The module with that physics' `ForwardModel`, `BatchSynth` and `PARAMS`."""
    return import_module(_SYNTH[check_physics(physics)])


def fisher_model(physics: str = DEFAULT_PHYSICS, device: str = "cpu"):
    """The smooth-normalised forward model the Fisher code differentiates, in the
    physics' JACOBIAN_DTYPE (float64 unless the synth module says otherwise; the Fisher
    sum is always float64), on `device` (engine.devices names)."""
    import torch

    from engine.devices import resolve_device

    mod = synth_module(physics)
    model = mod.ForwardModel(normalise="smooth", analytic_jvp=True,
                             dtype=getattr(mod, "JACOBIAN_DTYPE", torch.float64))
    return model.to(resolve_device(device))
