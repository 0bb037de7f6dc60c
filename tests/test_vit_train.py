"""SpecViT training: learning, determinism, resume, best-checkpoint selection, failures."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from engine.errors import RunError, SpecError
from engine.models.vit.estimator import SpecViTRegressor
from engine.models.vit.trainer import lr_lambda

L = 256


def _spectra(n: int, seed: int = 0):
    """Toy spectra whose line depths and widths depend on log g (and T_eff)."""
    rng = np.random.default_rng(seed)
    g = rng.uniform(1.0, 5.0, n)
    t = rng.uniform(4000, 6000, n)
    x = np.arange(L)
    flux = np.ones((n, L))
    for c, a in [(40, 0.08), (100, 0.05), (170, 0.1), (220, 0.04)]:
        depth = a * (0.5 + 0.2 * g[:, None]) * (t[:, None] / 5000)
        width = 2.0 + 0.6 * g[:, None]
        flux -= depth * np.exp(-0.5 * ((x - c) / width) ** 2)
    error = np.full((n, L), 0.01)
    return flux.astype(np.float32), error.astype(np.float32), g, t


pytestmark = pytest.mark.usefixtures("torch_one_thread")   # conftest


def _est(**kw) -> SpecViTRegressor:
    base = dict(patch_size=16, hidden=32, layers=2, heads=4, dropout=0.0, attn_dropout=0.0,
                lr=3e-3, weight_decay=0.0, batch_size=16, epochs=4, warmup_frac=0.1,
                min_lr=1e-4, device="cpu", seed=3, noise_level=1.0)
    base.update(kw)
    return SpecViTRegressor(**base)


def _r2(y, p):
    return 1 - ((y - p) ** 2).sum() / ((y - y.mean()) ** 2).sum()


def test_overfits_64_spectra():
    flux, err, g, _ = _spectra(64)
    est = _est(epochs=50, batch_size=16, lr=3e-3, noise_level=0.0).fit(flux, g, error=err)
    assert est.history_[-1]["train_loss"] < 0.1
    assert _r2(g, est.predict(flux)) > 0.95


def test_same_seed_gives_identical_weights_and_different_seed_does_not():
    flux, err, g, _ = _spectra(48)
    a = _est(epochs=2).fit(flux, g, error=err)
    b = _est(epochs=2).fit(flux, g, error=err)
    c = _est(epochs=2, seed=4).fit(flux, g, error=err)
    for (k, va), vb in zip(a.model_.state_dict().items(), b.model_.state_dict().values()):
        assert torch.equal(va, vb), k
    assert not np.array_equal(a.predict(flux), c.predict(flux))
    assert [h["train_loss"] for h in a.history_] == [h["train_loss"] for h in b.history_]


def test_resume_after_interruption_matches_uninterrupted_run(tmp_path):
    flux, err, g, _ = _spectra(48)
    vx, verr, vg, _ = _spectra(24, seed=1)
    vnoisy = vx + np.random.default_rng(5).standard_normal(vx.shape).astype(np.float32) * verr
    kw = dict(epochs=3, dropout=0.1)                 # dropout: the global RNG must resume too
    ref = _est(**kw).fit(flux, g, error=err, eval_set=(vnoisy, vg),
                         checkpoint_dir=tmp_path / "ref")
    calls = {"n": 0}

    def stop_mid_epoch():        # polled before each batch and after each epoch: call 6 =
        calls["n"] += 1          # before the 2nd batch of epoch 1 (3 batches per epoch)
        return calls["n"] == 6

    cut = _est(**kw).fit(flux, g, error=err, eval_set=(vnoisy, vg),
                         checkpoint_dir=tmp_path / "run", should_stop=stop_mid_epoch)
    assert cut.stopped_ and len(cut.history_) == 1
    mid = torch.load(tmp_path / "run" / "last.pt", weights_only=True)["loop"]
    assert (mid["epoch"], mid["step_in_epoch"], mid["global_step"]) == (1, 1, 4)
    done = _est(**kw).fit(flux, g, error=err, eval_set=(vnoisy, vg),
                          checkpoint_dir=tmp_path / "run", resume=True)
    assert not done.stopped_
    for (k, va), vb in zip(ref.model_.state_dict().items(), done.model_.state_dict().values()):
        torch.testing.assert_close(va, vb, atol=1e-6, rtol=1e-5, msg=k)
    assert [h["val_r2"] for h in done.history_] == pytest.approx(
        [h["val_r2"] for h in ref.history_], abs=1e-6)
    last = torch.load(tmp_path / "run" / "last.pt", weights_only=True)
    assert last["loop"]["global_step"] == 9 and last["loop"]["epoch"] == 3


def test_estimator_ends_with_best_checkpoint_by_val_r2(tmp_path):
    flux, err, g, _ = _spectra(64)
    vx, verr, vg, _ = _spectra(32, seed=2)
    vnoisy = vx + np.random.default_rng(6).standard_normal(vx.shape).astype(np.float32) * verr
    est = _est(epochs=6, lr=3e-2).fit(flux, g, error=err, eval_set=(vnoisy, vg),
                                      checkpoint_dir=tmp_path)
    r2s = [h["val_r2"] for h in est.history_]
    best = int(np.argmax(r2s))
    assert est.best_epoch_ == best and est.best_val_r2_ == pytest.approx(max(r2s))
    assert _r2(vg, est.predict(vnoisy)) == pytest.approx(max(r2s), abs=1e-5)
    mae = np.abs(vg - est.predict(vnoisy)).mean()       # reported MAE is in dex
    assert est.history_[best]["val_mae"] == pytest.approx(mae, abs=1e-5)
    saved = torch.load(tmp_path / "best.pt", weights_only=True)
    assert saved["epoch"] == best


def test_save_load_roundtrip_predicts_identically(tmp_path):
    flux, err, g, t = _spectra(32)
    est = _est(epochs=1).fit(flux, np.stack([t, g], 1), error=err)
    est.save(tmp_path / "m")
    back = SpecViTRegressor.load(tmp_path / "m", device="cpu")
    p = est.predict(flux)
    assert p.shape == (32, 2)
    np.testing.assert_array_equal(back.predict(flux), p)
    assert back.get_params()["hidden"] == 32


def test_non_finite_loss_raises_run_error_naming_the_reason():
    flux, err, g, _ = _spectra(32)
    flux[5, 10] = np.nan
    with pytest.raises(RunError, match=r"non-finite loss at epoch 0 step \d"):
        _est(epochs=2).fit(flux, g, error=err)


def test_collapse_to_the_mean_raises_run_error():
    n = 32
    flux = np.ones((n, L), np.float32)                 # every input identical -> constant output
    err = np.zeros((n, L), np.float32)
    g = np.random.default_rng(0).uniform(1, 5, n)
    with pytest.raises(RunError, match="collapse to the mean"):
        _est(epochs=6, collapse_patience=2).fit(flux, g, error=err,
                                                eval_set=(flux[:16], g[:16]))


@pytest.mark.parametrize("loss", ["mae", "MSE", "rmse"])
def test_unknown_loss_is_a_spec_error(loss):
    flux, err, g, _ = _spectra(8)
    with pytest.raises(SpecError, match="unknown loss") as info:
        _est(loss=loss).fit(flux, g, error=err)
    assert info.value.exit_code == 2


def test_schedule_warms_up_linearly_then_cosine_ends_at_min_lr_on_last_step():
    f = lr_lambda(total_steps=100, warmup_steps=10, min_ratio=0.01)
    assert f(0) == pytest.approx(0.1) and f(9) == pytest.approx(1.0)
    assert f(10) == pytest.approx(1.0)
    assert f(55) == pytest.approx(0.01 + 0.99 * 0.5)   # half-way through the cosine
    assert f(100) == pytest.approx(0.01)
    assert all(f(s) >= f(s + 1) for s in range(10, 100))  # never climbs back (T_max fix)


def test_l1_and_huber_losses_train():
    flux, err, g, _ = _spectra(32)
    for loss in ("l1", "huber"):
        est = _est(epochs=2, loss=loss).fit(flux, g, error=err)
        assert math.isfinite(est.history_[-1]["train_loss"])


def test_resuming_a_finished_fit_trains_nothing_and_ends_with_its_best_weights(tmp_path):
    """A run that failed after training (writing its predictions) is continued from the
    final last.pt: no step is trained again, the estimator ends with the best weights."""
    flux, err, g, _ = _spectra(48)
    vx, verr, vg, _ = _spectra(24, seed=1)
    vnoisy = vx + np.random.default_rng(5).standard_normal(vx.shape).astype(np.float32) * verr
    ref = _est(epochs=3).fit(flux, g, error=err, eval_set=(vnoisy, vg),
                             checkpoint_dir=tmp_path)
    events = []
    again = _est(epochs=3).fit(flux, g, error=err, eval_set=(vnoisy, vg),
                               checkpoint_dir=tmp_path, resume=True,
                               callbacks=[lambda ev, **kw: events.append((ev, kw))])
    logs = [kw["message"] for ev, kw in events if ev == "log"]
    assert any("resumed from last.pt at step 9/9 (training complete)" in m for m in logs)
    assert not [kw for ev, kw in events if ev == "progress"]
    for (k, va), vb in zip(ref.model_.state_dict().items(), again.model_.state_dict().values()):
        assert torch.equal(va, vb), k
    assert again.best_epoch_ == ref.best_epoch_


def test_an_unreadable_last_checkpoint_starts_from_step_zero(tmp_path):
    flux, err, g, _ = _spectra(48)
    ref = _est(epochs=2).fit(flux, g, error=err)
    (tmp_path / "last.pt").write_bytes(b"not a checkpoint")
    events = []
    est = _est(epochs=2).fit(flux, g, error=err, checkpoint_dir=tmp_path, resume=True,
                             callbacks=[lambda ev, **kw: events.append((ev, kw))])
    assert any("could not be read" in kw.get("message", "") for ev, kw in events
               if ev == "log")
    for (k, va), vb in zip(ref.model_.state_dict().items(), est.model_.state_dict().values()):
        assert torch.equal(va, vb), k
