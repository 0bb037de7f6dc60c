"""Every registered model adapter satisfies engine.models.contract.ModelAdapter.

Checked three ways: `isinstance` against the runtime-checkable Protocol (every member
present), the method signatures (same parameter names as the Protocol's, so a keyword
call from the runner cannot miss), and statically: mypy checks `_static_check` below
(this file is in pyproject's [tool.mypy] files), which assigns each adapter class to the
Protocol type."""

from __future__ import annotations

import inspect
from typing import TYPE_CHECKING

import numpy as np
import pytest

from engine.models.contract import ModelAdapter, PredictContext, TrainContext
from engine.runs.registry import ADAPTERS, get_adapter

if TYPE_CHECKING:
    from engine.models.lgbm_adapter import LGBMAdapter
    from engine.models.ridge_adapter import RidgeAdapter
    from engine.models.templatefit_adapter import TemplateFitAdapter
    from engine.models.vit.adapter import ViTAdapter

METHODS = ("build", "train", "predict", "describe", "save", "load")


def _static_check() -> list[ModelAdapter]:
    """Never called: mypy proves each adapter is a ModelAdapter (a missing member or an
    incompatible signature is a type error here)."""
    return [RidgeAdapter(), LGBMAdapter(), ViTAdapter(), TemplateFitAdapter()]


@pytest.mark.parametrize("model", list(ADAPTERS))
def test_registered_adapter_satisfies_the_protocol(model):
    adapter = get_adapter(model)
    assert isinstance(adapter, ModelAdapter)
    assert adapter.name == model
    assert adapter.presets and all(isinstance(p, dict) for p in adapter.presets.values())
    for method in METHODS:
        want = list(inspect.signature(getattr(ModelAdapter, method)).parameters)[1:]
        got = list(inspect.signature(getattr(adapter, method)).parameters)
        assert got == want, f"{model}.{method}{tuple(got)} != ModelAdapter.{method}"


@pytest.mark.parametrize("model", list(ADAPTERS))
def test_presets_hold_hyper_parameters_only(model):
    """Run options (augment_copies) live on the RunSpec, not in an estimator's presets."""
    from engine.runs.spec import RUN_OPTIONS

    for params in get_adapter(model).presets.values():
        assert not set(params) & set(RUN_OPTIONS)


def test_a_class_missing_a_member_is_not_an_adapter():
    class NoPredict:
        name, distributed, augments, resumes = "x", False, False, False
        presets: dict[str, dict] = {"x": {}}

        def build(self, params): ...
        def train(self, est, ctx): ...
        def describe(self, est): ...
        def save(self, est, directory): ...
        def load(self, directory): ...

    assert not isinstance(NoPredict(), ModelAdapter)


def test_predict_context_names_its_rows():
    ctx = PredictContext(split=None, flux=np.zeros((5, 3), np.float32),  # type: ignore[arg-type]
                         noise_level=1.0, start=10)
    assert (ctx.start, ctx.stop) == (10, 15)
    with pytest.raises(AttributeError):
        ctx.start = 0  # type: ignore[misc]
    assert TrainContext(train=None, val=None, noise_level=1.0,  # type: ignore[arg-type]
                        seed=0).augment_copies == 1
