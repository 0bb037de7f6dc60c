"""SpecViT on real pfsspec HDF5 splits: resident vs streamed training, adapter round trip."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from engine.io.columns import empty_params
from engine.io.dataset import Dataset, write_manifest
from engine.io.pfsspec import write_spectra
from engine.models.contract import PredictContext, TrainContext
from engine.models.vit.adapter import ViTAdapter

W = 128


pytestmark = pytest.mark.usefixtures("torch_one_thread")   # conftest


def _shard(root, name, n, seed):
    rng = np.random.default_rng(seed)
    g = rng.uniform(1, 5, n)
    x = np.arange(W)
    flux = 1 - 0.1 * (0.5 + 0.2 * g[:, None]) * np.exp(-0.5 * ((x - 60) / (2 + g[:, None])) ** 2)
    error = np.full((n, W), 0.01)
    p = empty_params(n)
    p["log_g"] = g
    noisy = flux + error * rng.standard_normal((n, W))
    write_spectra(root / name / "dataset.h5", wave=7100.0 + x, flux=flux, error=error,
                  params=p, noisy=noisy)


@pytest.fixture()
def ds(tmp_path):
    root = tmp_path / "datasets" / "toy"
    _shard(root, "train_60_0", 60, 0)
    _shard(root, "val_20", 20, 1)
    _shard(root, "test_20", 20, 2)
    write_manifest(root, name="toy", preset="tiny", seed=0, noise_level=1.0,
                   shards={"train_60_0": 60, "val_20": 20, "test_20": 20})
    with Dataset(root) as d:
        yield d


PARAMS = dict(patch_size=16, hidden=16, layers=1, heads=2, dropout=0.0, attn_dropout=0.0,
              batch_size=16, epochs=2, lr=3e-3, seed=1)


def _ctx(ds, tmp_path, **kw):
    return TrainContext(train=ds.train(), val=ds.split("val"), noise_level=1.0, seed=1,
                        checkpoint_dir=tmp_path / "ck", run_dir=tmp_path, device="cpu", **kw)


def test_streamed_training_equals_resident_when_one_chunk_holds_the_set(ds, tmp_path):
    ad = ViTAdapter()
    logs: dict[str, list[str]] = {"a": [], "b": []}

    def cb(k):
        return lambda event, **f: logs[k].append(f.get("message", "")) if event == "log" \
            else None

    a = ad.train(ad.build(dict(PARAMS)), _ctx(ds, tmp_path / "a", callbacks=(cb("a"),)))
    b = ad.train(ad.build(dict(PARAMS, max_resident_gb=0.0, chunk_rows=64)),
                 _ctx(ds, tmp_path / "b", callbacks=(cb("b"),)))
    # the run says which path it took
    assert any(m.startswith("training set resident on cpu") for m in logs["a"])
    assert any(m.startswith("training set streamed from HDF5 in chunks of 64") for m in logs["b"])
    for (k, va), vb in zip(a.model_.state_dict().items(), b.model_.state_dict().values()):
        assert torch.equal(va, vb), k
    # smaller chunks: a different but complete order; still trains to the same step count
    c = ad.train(ad.build(dict(PARAMS, max_resident_gb=0.0, chunk_rows=25)),
                 _ctx(ds, tmp_path / "c"))
    assert [h["epoch"] for h in c.history_] == [0, 1]
    assert np.isfinite([h["train_loss"] for h in c.history_]).all()


def test_validation_uses_the_frozen_noisy_val_array_in_dex(ds, tmp_path):
    ad = ViTAdapter()
    est = ad.train(ad.build(dict(PARAMS)), _ctx(ds, tmp_path))
    val = ds.split("val")
    X, y = val.noisy(1.0), val.log_g
    np.testing.assert_array_equal(X, val.read("noisy"))       # the stored frozen array
    p = ad.predict(est, PredictContext(split=val, flux=X, noise_level=1.0))
    r2 = 1 - ((y - p) ** 2).sum() / ((y - y.mean()) ** 2).sum()
    assert est.best_val_r2_ == pytest.approx(r2, abs=1e-5)
    assert est.history_[est.best_epoch_]["val_mae"] == pytest.approx(np.abs(y - p).mean(),
                                                                     abs=1e-5)


def test_adapter_save_load_and_events(ds, tmp_path):
    events = []
    ad = ViTAdapter()
    est = ad.train(ad.build(dict(PARAMS)),
                   _ctx(ds, tmp_path, callbacks=(lambda e, **f: events.append((e, f)),)))
    ad.save(est, tmp_path / "ck")
    back = ad.load(tmp_path / "ck")
    test = ds.split("test")
    rows = PredictContext(split=test, flux=test.noisy(1.0), noise_level=1.0)
    np.testing.assert_array_equal(ad.predict(back, rows), ad.predict(est, rows))
    metrics = [(f["name"], f["split"], f["step"]) for e, f in events if e == "metric"]
    assert ("r2", "val", 1) in metrics and ("train_loss", "train", 0) in metrics
    assert ("mae", "val", 0) in metrics and ("lr", "train", 1) in metrics
    prog = [f for e, f in events if e == "progress"]
    assert prog[-1]["done"] == prog[-1]["total"] == 8 and "val_r2" in prog[-1]
    assert ad.describe(est)["n_params"] == est.n_params_


def test_stop_request_checkpoints_and_marks_the_estimator(ds, tmp_path):
    ad = ViTAdapter()
    est = ad.train(ad.build(dict(PARAMS)), _ctx(ds, tmp_path, should_stop=lambda: True))
    assert est.stopped_ and (tmp_path / "ck" / "last.pt").exists()


def test_unknown_hyper_parameter_is_a_spec_error():
    from engine.errors import SpecError
    with pytest.raises(SpecError, match="hidden_size"):
        ViTAdapter().build({"hidden_size": 3})
    assert list(ViTAdapter.presets) == ["vit-cpu", "vit-paper", "vit-moe-cpu"]


def test_per_epoch_validation_uses_the_first_val_rows_of_the_frozen_split(ds, tmp_path):
    """`val_rows` caps the per-epoch model-selection set (the conformal calibration still
    uses the whole split): best val R² is the R² on exactly the first val_rows stars."""
    ad = ViTAdapter()
    est = ad.train(ad.build(dict(PARAMS, val_rows=12)), _ctx(ds, tmp_path))
    val = ds.split("val")
    X, y = val.noisy(1.0)[:12], val.log_g[:12]
    p = ad.predict(est, PredictContext(split=val, flux=X, noise_level=1.0))
    r2 = 1 - ((y - p) ** 2).sum() / ((y - y.mean()) ** 2).sum()
    assert est.best_val_r2_ == pytest.approx(r2, abs=1e-5)
    full = val.log_g
    pf = ad.predict(est, PredictContext(split=val, flux=val.noisy(1.0), noise_level=1.0))
    assert est.best_val_r2_ != pytest.approx(
        1 - ((full - pf) ** 2).sum() / ((full - full.mean()) ** 2).sum(), abs=1e-5)
