"""Model name → adapter class ("module:Class"), imported lazily.

Why lazy: adapters pull in heavy libraries (lightgbm, torch); `logg-engine --help` and the
TUI must not pay for them, and a model whose adapter is missing or broken fails only when
someone asks for it. A new model joins every command (run, scaling, TUI) by one line here."""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from functools import cache
from typing import Any

from engine.errors import SpecError
from engine.models.contract import ModelAdapter

ADAPTERS: dict[str, str] = {
    "ridge": "engine.models.ridge_adapter:RidgeAdapter",
    "lgbm": "engine.models.lgbm_adapter:LGBMAdapter",
    "vit": "engine.models.vit.adapter:ViTAdapter",
    "template-fit": "engine.models.templatefit_adapter:TemplateFitAdapter",
}


def model_names() -> list[str]:
    return list(ADAPTERS)


@cache
def get_adapter(model: str) -> ModelAdapter:
    """An adapter instance for `model`; SpecError for an unknown or unavailable model, or
    one whose adapter does not satisfy the ModelAdapter protocol (engine.models.contract)."""
    if model not in ADAPTERS:
        raise SpecError(f"unknown model {model!r}", key="model",
                        hint=f"use one of: {', '.join(ADAPTERS)}")
    module_name, _, cls_name = ADAPTERS[model].partition(":")
    try:
        cls = getattr(importlib.import_module(module_name), cls_name)
    except (ImportError, AttributeError) as exc:
        raise SpecError(f"model {model!r} is not available: {exc}", key="model",
                        hint=f"its adapter {ADAPTERS[model]} could not be loaded") from None
    adapter = cls()
    if not isinstance(adapter, ModelAdapter):
        raise SpecError(f"model {model!r} is not available: {ADAPTERS[model]} does not "
                        "implement engine.models.contract.ModelAdapter", key="model",
                        hint="add the missing attributes/methods (docs/dev-contracts.md)")
    return adapter


def presets(model: str) -> dict[str, Mapping[str, Any]]:
    """The model's presets (first = default)."""
    return dict(get_adapter(model).presets)
