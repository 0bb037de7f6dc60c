"""Both physics behind one build path: `--physics lte` (generator 2.2) builds a dataset whose
manifest, shards and fingerprint say so, apart from the default (1.0) build of the same
preset; both give finite, pfsspec-normalised spectra."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from engine.errors import SpecError
from engine.generator.build import build_dataset
from engine.generator.physics import generator_version, physics_of_version, synth_module
from engine.generator.presets import Preset, ShardSpec
from engine.io.dataset import Dataset

MINI = Preset("mini", (ShardSpec("train_6_0", 6), ShardSpec("val_4", 4),
                       ShardSpec("test_4_0", 4, crlb=True, noisy=True)))


def test_versions_and_modules():
    assert generator_version() == "1.0" and generator_version("lte") == "2.2"
    assert physics_of_version("2.1") == "lte" and physics_of_version("2.2") == "lte" and physics_of_version(None) == "me"
    assert physics_of_version("2.0") == "lte"      # datasets of the earlier v2 physics
    assert synth_module("lte").PARAMS == synth_module("me").PARAMS
    with pytest.raises(SpecError, match="physics"):
        generator_version("nlte")


def test_both_physics_give_normalised_spectra_that_differ():
    theta = torch.tensor([[4500.0, 2.0, -1.0, 0.2, 0.0], [5500.0, 4.5, 0.0, 0.0, 0.0]])
    v1 = synth_module("me").ForwardModel()(theta)
    v2 = synth_module("lte").ForwardModel()(theta)
    for f in (v1, v2):
        assert f.shape == (2, 4096) and torch.isfinite(f).all()
        assert torch.allclose(f.median(dim=1).values, torch.full((2,), 0.5), atol=2e-3)
    assert (v1 - v2).abs().max() > 0.01  # not the same physics under two names


@pytest.mark.slow
def test_an_lte_build_is_its_own_dataset(tmp_path):
    a = build_dataset(MINI, out=tmp_path / "me", compile="off")
    b = build_dataset(MINI, out=tmp_path / "lte", compile="off", physics="lte")
    man = json.loads((b / "dataset.json").read_text())
    assert man["generator_version"] == "2.2" and man["generator"]["physics"] == "lte"
    assert man["generator"]["n_lines"] == 3000          # v2's own line list
    with Dataset(a) as da, Dataset(b) as db:
        assert da.fingerprint() != db.fingerprint()
        fa, fb = da.split("train").read("flux"), db.split("train").read("flux")
        assert np.isfinite(fb).all() and np.abs(np.median(fb, axis=1) - 0.5).max() < 2e-3
        assert np.abs(fa - fb).max() > 0.01
        assert np.isfinite(db.split("test").params["crlb_log_g"]).all()
    with pytest.raises(SpecError, match="different dataset"):  # no mixing in one folder
        build_dataset(MINI, out=b, compile="off")

