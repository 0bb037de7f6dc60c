"""RunSpec: resolution of presets and overrides, validation, config hash, registry."""

from __future__ import annotations

import pytest

from engine.errors import SpecError
from engine.runs.registry import ADAPTERS, get_adapter
from engine.runs.spec import RunSpec, build_spec, parse_value, resolve_params
from fakes import make_fake_dataset


@pytest.fixture
def ws(_isolated_workspace):
    make_fake_dataset(_isolated_workspace / "datasets" / "fake", train_shards=(300, 200),
                      n_val=50, n_test=60, n_pixels=32)
    return _isolated_workspace


def test_overrides_are_parsed_to_the_preset_types(ws):
    spec = build_spec("lgbm", workspace=ws, size="400", dataset="fake",
                      overrides=["num_leaves=15", "learning_rate=0.2", "metric=l1,l2",
                                 "n_estimators=1e3"])
    p = spec.params
    assert p["num_leaves"] == 15 and isinstance(p["num_leaves"], int)
    assert p["learning_rate"] == 0.2 and p["n_estimators"] == 1000
    assert p["metric"] == ["l1", "l2"]
    assert spec.preset == "lgbm-paper" and spec.train_size == 400
    ridge = build_spec("ridge", workspace=ws, size="0.5k", dataset="fake",
                       preset="ridge-fixed", overrides=["alpha=3e4", "standardize=false"])
    assert ridge.params["alpha"] == 3e4 and ridge.params["standardize"] is False
    assert ridge.params["alphas"] == [] and ridge.train_size == 500


def test_spec_is_frozen_and_round_trips(ws):
    spec = build_spec("ridge", workspace=ws, size=500, dataset="fake", seed=3)
    from dataclasses import FrozenInstanceError

    with pytest.raises(FrozenInstanceError):
        spec.seed = 4
    with pytest.raises(TypeError):
        spec.params["alpha"] = 1.0
    again = RunSpec.from_json(spec.to_json())
    assert again == spec and again.config_hash() == spec.config_hash()


def test_config_hash_depends_on_model_and_params_only(ws):
    a = build_spec("ridge", workspace=ws, size=500, dataset="fake", seed=1)
    b = build_spec("ridge", workspace=ws, size=300, dataset="fake", seed=2, noise_level=0.5)
    c = build_spec("ridge", workspace=ws, size=500, dataset="fake", overrides=["alpha=10"])
    assert a.config_hash() == b.config_hash() != c.config_hash()
    assert len(a.config_hash()) == 16


@pytest.mark.parametrize("kwargs, key, fix", [
    (dict(model="ridge", preset="nope"), "preset", "ridge-paper, ridge-fixed"),
    (dict(model="ridge", overrides=["alhpa=1"]), "alhpa", "valid keys: alpha, alphas"),
    (dict(model="ridge", overrides=["alpha=big"]), "alpha", "--set alpha="),
    (dict(model="ridge", overrides=["alpha"]), "set", "key=value"),
    (dict(model="mlp"), "model", "ridge, lgbm, vit"),
    (dict(model="ridge", size="12q"), "size", "50k"),
    (dict(model="ridge", size="2k"), "size", "--size ≤ 500"),
    (dict(model="ridge", dataset="missing"), "dataset", "data generate"),
    (dict(model="ridge", noise_level=0.0), "noise_level", "1.0"),
    (dict(model="ridge", test_split="test_999"), None, "train/val/test"),
])
def test_bad_input_is_a_spec_error(ws, kwargs, key, fix):
    args = dict(size="400", dataset="fake") | kwargs
    model = args.pop("model")
    with pytest.raises(SpecError) as info:
        build_spec(model, workspace=ws, **args)
    assert info.value.exit_code == 2
    if key:
        assert info.value.key == key
    assert fix in info.value.render()


def test_parse_value_types():
    assert parse_value("k", "yes", True) is True
    assert parse_value("k", "7", 3) == 7
    assert parse_value("k", "1e2,1e3", [1.0]) == [100.0, 1000.0]
    assert parse_value("k", "", [1.0]) == []
    with pytest.raises(SpecError):
        parse_value("k", "7.5", 3)


def test_registry_is_lazy_and_complete():
    assert set(ADAPTERS) >= {"ridge", "lgbm", "vit"}
    assert ADAPTERS["vit"] == "engine.models.vit.adapter:ViTAdapter"
    assert list(get_adapter("ridge").presets)[0] == "ridge-paper"
    assert list(get_adapter("lgbm").presets) == ["lgbm-paper", "lgbm-fast"]
    assert resolve_params("lgbm", get_adapter("lgbm").presets, "lgbm-fast", [])[
        "max_bin"] == 63


def test_run_control_options_are_settable_without_changing_a_plain_run():
    """The ViT's max_steps / val_rows / max_resident_gb: accepted by --set though no preset
    lists them, parsed to their type, and absent (same params, same hash) when not set."""
    ad = get_adapter("vit")
    plain = resolve_params("vit", ad.presets, "vit-cpu", [])
    assert "max_steps" not in plain and plain == dict(ad.presets["vit-cpu"])
    p = resolve_params("vit", ad.presets, "vit-cpu", ["max_steps=60", "max_resident_gb=0.5"],
                       ad.options)
    assert p["max_steps"] == 60 and p["max_resident_gb"] == 0.5
    assert ad.build(p).max_steps == 60
    with pytest.raises(SpecError, match="unknown parameter") as err:
        resolve_params("vit", ad.presets, "vit-cpu", ["max_stepz=1"], ad.options)
    assert "max_steps" in err.value.hint
    with pytest.raises(SpecError, match="unknown parameter"):        # ridge has no options
        resolve_params("ridge", get_adapter("ridge").presets, "ridge-paper", ["max_steps=1"],
                       getattr(get_adapter("ridge"), "options", None))


def test_cli_startup_does_not_import_heavy_libraries():
    import subprocess
    import sys

    code = ("import sys, engine.cli, engine.runs.spec, engine.runs.registry, "
            "engine.runs.runner, engine.runs.executor, engine.runs.scaling;"
            "print(sorted(m for m in ('torch', 'lightgbm') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "[]"


def test_augment_copies_is_a_run_option_on_the_spec(ws):
    """`--set augment_copies=K` reaches the spec (and from there the TrainContext), never
    the estimator's params; the hash is the one a run got when augment_copies was still a
    preset parameter (same formula, written out here), so stored runs keep matching."""
    import hashlib
    import json

    from engine.runs.spec import RUN_OPTIONS

    one = build_spec("ridge", workspace=ws, size=500, dataset="fake")
    two = build_spec("ridge", workspace=ws, size=500, dataset="fake",
                     overrides=["augment_copies=2", "alpha=10"])
    assert (one.augment_copies, two.augment_copies) == (1, 2)
    assert "augment_copies" not in two.params and two.params["alpha"] == 10
    old = json.dumps({"model": "ridge", "params": {**one.params, "augment_copies": 1}},
                     sort_keys=True, default=str)
    assert one.config_hash() == hashlib.sha256(old.encode()).hexdigest()[:16]
    assert two.config_hash() != build_spec("ridge", workspace=ws, size=500, dataset="fake",
                                           overrides=["alpha=10"]).config_hash()
    assert build_spec("vit", workspace=ws, size=500, dataset="fake").augment_copies is None
    with pytest.raises(SpecError) as exc:
        build_spec("vit", workspace=ws, size=500, dataset="fake",
                   overrides=["augment_copies=2"])
    assert exc.value.key == "augment_copies"
    with pytest.raises(SpecError):
        build_spec("lgbm", workspace=ws, size=500, dataset="fake",
                   overrides=["augment_copies=0"])
    assert set(RUN_OPTIONS) == {"augment_copies"}


def test_a_run_json_from_before_the_move_reads_as_today(ws):
    """A spec written when augment_copies was among the params loads with it on the spec
    and keeps its config hash."""
    spec = build_spec("lgbm", workspace=ws, size=500, dataset="fake",
                      overrides=["augment_copies=3"])
    doc = spec.to_json()
    doc.pop("augment_copies")
    doc["params"] = {**doc["params"], "augment_copies": 3}
    again = RunSpec.from_json(doc)
    assert again == spec and again.config_hash() == spec.config_hash()
