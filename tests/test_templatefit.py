"""The χ² template-fit baseline: exact recovery at a node, the analytic scale against
least squares, a noisy recovery, and an end-to-end run on the generated `tiny` set."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from engine.generator.synth import BatchSynth
from engine.io.dataset import Dataset
from engine.models.templatefit import TemplateFit, analytic_scale, chi2_grid

GRID = dict(teff=(4000.0, 5000.0, 500.0), logg=(2.0, 4.0, 1.0), mh=(-1.0, 0.0, 0.5))


@pytest.fixture(scope="module")
def small_fit(tmp_path_factory):
    return TemplateFit(**GRID, refine_steps=4,
                       cache_dir=tmp_path_factory.mktemp("tfcache")).fit()


@pytest.fixture(scope="module")
def synth():
    return BatchSynth(batch=8)


def test_noiseless_node_spectrum_is_recovered_exactly(small_fit, synth):
    theta = np.array([[4500, 3.0, -0.5, 0, 0], [5000, 2.0, 0.0, 0, 0]], np.float32)
    flux = synth(theta) * np.array([[1.7], [0.4]], np.float32)
    err = np.full_like(flux, 0.01)
    pred = small_fit.predict(flux, err)
    np.testing.assert_array_equal(pred, [3.0, 2.0])
    np.testing.assert_array_equal(small_fit.teff_pred_, [4500, 5000])
    np.testing.assert_array_equal(small_fit.mh_pred_, [-0.5, 0.0])
    np.testing.assert_allclose(small_fit.scale_pred_, [1.7, 0.4], rtol=1e-6)
    # the cache is reused: a second estimator loads the same templates
    again = TemplateFit(**GRID, cache_dir=small_fit.cache_dir).fit()
    np.testing.assert_array_equal(again.templates_, small_fit.templates_)


def test_analytic_scale_and_chi2_equal_weighted_least_squares():
    rng = np.random.default_rng(1)
    x = rng.normal(1.0, 0.3, (3, 50))
    T = rng.normal(1.0, 0.3, (4, 50))
    sig = rng.uniform(0.05, 0.5, (3, 50))
    w = 1 / sig**2
    chi2, scale = chi2_grid(x, w, T)
    for i in range(3):
        for k in range(4):
            a, *_ = np.linalg.lstsq((T[k] / sig[i])[:, None], x[i] / sig[i], rcond=None)
            assert scale[i, k] == pytest.approx(a[0], rel=1e-10)
            assert analytic_scale(x[i], T[k], w[i]) == pytest.approx(a[0], rel=1e-10)
            direct = np.sum(w[i] * (x[i] - a[0] * T[k]) ** 2)
            assert chi2[i, k] == pytest.approx(direct, rel=1e-8)


def test_refinement_equals_chi2_of_interpolated_template(small_fit, synth):
    """The sub-grid χ² (via b, G) equals the χ² against the explicitly interpolated
    template at the chosen point."""
    theta = np.array([[4300, 2.6, -0.6, 0, 0]], np.float32)
    x = synth(theta)
    err = x / 25
    small_fit.predict(x, err)
    t, g, m = small_fit.teff_pred_[0], small_fit.logg_pred_[0], small_fit.mh_pred_[0]
    axes = (small_fit.teff_axis_, small_fit.logg_axis_, small_fit.mh_axis_)
    T = small_fit.templates_.reshape(3, 3, 3, -1).astype(np.float64)
    w1 = [np.maximum(0, 1 - np.abs((v - a) / (a[1] - a[0]))) for v, a in zip((t, g, m), axes)]
    f = np.einsum("i,j,k,ijkp->p", *w1, T)
    w = 1 / err[0].astype(np.float64) ** 2
    a = analytic_scale(x[0], f, w)
    assert small_fit.chi2_pred_[0] == pytest.approx(np.sum(w * (x[0] - a * f) ** 2),
                                                    rel=1e-6, abs=1e-6)
    assert abs(g - 2.6) <= 0.25 and abs(t - 4300) <= 125


def test_noisy_spectrum_recovers_log_g(small_fit, synth):
    theta = np.array([[4500, 3.0, -0.5, 0, 0], [4750, 3.5, -0.25, 0, 0]], np.float32)
    flux = synth(theta)
    err = flux / 30.0                                   # SNR 30 per pixel
    rng = np.random.default_rng(7)
    preds = [small_fit.predict(flux + rng.standard_normal(flux.shape) * err, err)
             for _ in range(3)]
    assert np.abs(np.array(preds) - theta[:, 1]).max() <= 0.5


def test_template_fit_run_end_to_end(_isolated_workspace, tiny_dataset):
    ws = _isolated_workspace
    root = ws / "datasets" / "tiny"
    for shard in tiny_dataset.glob("*/dataset.h5"):
        (root / shard.parent.name).mkdir(parents=True)
        (root / shard.parent.name / "dataset.h5").symlink_to(shard)
    (root / "dataset.json").write_bytes((tiny_dataset / "dataset.json").read_bytes())
    env = {**os.environ, "LOGG_WORKSPACE": str(ws)}
    out = subprocess.run([sys.executable, "-c", "from engine.cli import main; main()",
                          "run", "template-fit", "--size", "100", "--dataset", "tiny",
                          "--preset", "template-fit-fast"],
                         capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode == 0, out.stdout + out.stderr
    (run_dir,) = list((ws / "runs").iterdir())
    pred = pd.read_parquet(run_dir / "predictions.parquet")
    ds = Dataset(root)
    test = ds.split("test")
    # oracle: the estimator called directly on the frozen noisy test split and its errors
    from engine.models.templatefit_adapter import TemplateFitAdapter
    ad = TemplateFitAdapter()
    est = ad.build(ad.presets["template-fit-fast"])
    est.cache_dir = root / ".cache"
    expected = est.fit().predict(test.noisy(1.0), test.read("error"))
    ds.close()
    np.testing.assert_allclose(pred["y_pred"], expected, rtol=0, atol=1e-12)
    np.testing.assert_array_equal(pred["y_true"], test.log_g)
    m = json.loads((run_dir / "metrics.json").read_text())
    r2 = 1 - np.sum((pred.y_true - pred.y_pred) ** 2) / np.sum(
        (pred.y_true - pred.y_true.mean()) ** 2)
    assert m["overall"]["r2"] == pytest.approx(r2, rel=1e-9)
    assert m["extra"]["model"]["n_templates"] == len(est.templates_)
    assert list(root.joinpath(".cache").glob("templatefit_*.npy"))
