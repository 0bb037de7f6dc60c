"""The χ² template-fit baseline: exact recovery at a 5-D node, the analytic scale against
least squares, the Kronecker stencil against dense algebra, the refined χ² against an
explicitly interpolated template, recovery with nonzero [α/M]/[C/M] (which the old
[α/M] = [C/M] = 0 grid misses), χ² monotonicity under noise, the dataset guard, and an
end-to-end run on the generated `tiny` set."""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from engine.generator.synth import BatchSynth
from engine.io.dataset import Dataset
from engine.models.templatefit import (TemplateFit, analytic_scale, chi2_grid, lagrange,
                                       stencil_project, stencil_quad)

# 3 nodes per axis: T_eff, log g, [M/H] around the middle of the box; [α/M] and [C/M]
# default to 3 nodes across the generator's prior box (−0.25…0.5, −0.75…0.5)
GRID = dict(teff=(4000.0, 5000.0, 500.0), logg=(2.0, 4.0, 1.0), mh=(-1.0, 0.0, 0.5))
OLD = dict(GRID, am=(0.0, 0.0, 1.0), cm=(0.0, 0.0, 1.0))     # the first, 3-D version
# off-node truths with nonzero [α/M] and [C/M]
OFF_NODE = np.array([[4300, 2.6, -0.6, 0.2, 0.3], [4700, 3.4, -0.3, -0.1, -0.4],
                     [4200, 3.7, -0.8, 0.4, 0.4], [4550, 2.9, -0.4, 0.45, -0.6]], np.float32)


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("tfcache")


@pytest.fixture(scope="module")
def small_fit(cache):
    return TemplateFit(**GRID, refine_levels=4, cache_dir=cache).fit()


@pytest.fixture(scope="module")
def synth():
    return BatchSynth(batch=8)


def _chi2(x, f, w):
    a = analytic_scale(x, f, w)
    return float(np.sum(w * (x - a * f) ** 2))


def test_noiseless_node_spectrum_is_recovered_exactly(small_fit, synth, cache):
    theta = np.array([[4500, 3.0, -0.5, 0.5, -0.75], [5000, 2.0, 0.0, -0.25, 0.5]], np.float32)
    flux = synth(theta) * np.array([[1.7], [0.4]], np.float32)
    err = np.full_like(flux, 0.01)
    pred = small_fit.predict(flux, err)
    np.testing.assert_array_equal(pred, [3.0, 2.0])
    np.testing.assert_array_equal(small_fit.teff_pred_, [4500, 5000])
    np.testing.assert_array_equal(small_fit.mh_pred_, [-0.5, 0.0])
    np.testing.assert_array_equal(small_fit.am_pred_, [0.5, -0.25])
    np.testing.assert_array_equal(small_fit.cm_pred_, [-0.75, 0.5])
    np.testing.assert_allclose(small_fit.scale_pred_, [1.7, 0.4], rtol=1e-6)
    assert small_fit.n_templates_ == 3 ** 5
    # the cache is reused: a second estimator loads the same templates
    again = TemplateFit(**GRID, cache_dir=cache).fit()
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


def test_lagrange_and_kronecker_stencil_equal_dense_algebra():
    """Lagrange weights reproduce quadratics exactly; the axis-by-axis stencil equals
    c·b and cᵀGc with c the explicit Kronecker product of the per-axis weights."""
    u = np.linspace(0, 2, 7)
    np.testing.assert_allclose(lagrange(u, 3) @ np.array([0.0, 1.0, 4.0]), u ** 2, atol=1e-12)
    np.testing.assert_allclose(lagrange(u[:3], 2) @ np.array([2.0, 5.0]), 2 + 3 * u[:3])
    rng = np.random.default_rng(0)
    sizes = [3, 1, 3, 2, 3]
    S = int(np.prod(sizes))
    b = rng.normal(size=(2, S))
    M = rng.normal(size=(2, S, S))
    G = M @ M.transpose(0, 2, 1)
    Ws = [lagrange(rng.uniform(0, s - 1, (2, 3 if s > 1 else 1)), s) for s in sizes]
    num, den = stencil_project(b, Ws), stencil_quad(G, Ws)
    for i in range(2):
        C = []
        for combo in itertools.product(*[range(W.shape[1]) for W in Ws]):
            c = np.ones(1)
            for d, m in enumerate(combo):
                c = np.kron(c, Ws[d][i, m])
            C.append(c)
        C = np.array(C)
        np.testing.assert_allclose(num[i], C @ b[i], rtol=1e-12)
        np.testing.assert_allclose(den[i], np.einsum("mk,kl,ml->m", C, G[i], C), rtol=1e-12)


def test_refinement_equals_chi2_of_interpolated_template(small_fit, synth):
    """The refined χ² (via b, G) equals the χ² against the explicitly interpolated
    template (quadratic Lagrange on the 3⁵ window = this whole grid) at the fitted θ."""
    x = synth(OFF_NODE[:1])
    err = x / 25
    small_fit.predict(x, err)
    fitted = [getattr(small_fit, f"{k}_pred_")[0] for k in ("teff", "logg", "mh", "am", "cm")]
    ws = [lagrange((v - a[0]) / (a[1] - a[0]), 3) for v, a in zip(fitted, small_fit.axes_)]
    T = small_fit.templates_.reshape(3, 3, 3, 3, 3, -1).astype(np.float64)
    f = np.einsum("a,b,c,d,e,abcdep->p", *ws, T)
    w = 1 / err[0].astype(np.float64) ** 2
    assert small_fit.chi2_pred_[0] == pytest.approx(_chi2(x[0], f, w), rel=1e-6, abs=1e-6)


def test_nonzero_alpha_and_carbon_are_fitted_not_absorbed_by_log_g(small_fit, cache, synth):
    """Noiseless spectra with [α/M], [C/M] ≠ 0 between the nodes: the 5-D fit recovers
    log g to interpolation accuracy; the old grid with [α/M] = [C/M] = 0 biases it."""
    flux = synth(OFF_NODE)
    err = flux / 1000.0
    new = np.abs(small_fit.predict(flux, err) - OFF_NODE[:, 1])
    assert new.max() <= 0.15, new
    assert np.abs(small_fit.am_pred_ - OFF_NODE[:, 3]).max() <= 0.15
    # [C/M] is the coarsest axis (0.625 dex between nodes) and moves the spectrum least
    assert np.abs(small_fit.cm_pred_ - OFF_NODE[:, 4]).max() <= 0.35
    old = TemplateFit(**OLD, refine_levels=4, cache_dir=cache).fit()
    assert old.n_templates_ == 27
    bias = np.abs(old.predict(flux, err) - OFF_NODE[:, 1])
    assert bias.max() >= 0.5 and bias.mean() > 2 * new.mean(), (bias, new)


def test_noisy_fit_lowers_chi2_below_nodes_and_recovers_log_g(small_fit, synth):
    flux = synth(OFF_NODE)
    err = flux / 30.0                                   # SNR 30 per pixel
    rng = np.random.default_rng(7)
    w = 1 / err.astype(np.float64) ** 2
    preds = []
    for _ in range(3):
        x = (flux + rng.standard_normal(flux.shape) * err).astype(np.float64)
        preds.append(small_fit.predict(x, err))
        assert np.all(small_fit.chi2_pred_ <= small_fit.node_chi2_pred_ * (1 + 1e-9))
        for i in range(len(x)):                 # the grid node nearest to the fitted θ
            near = [int(np.argmin(np.abs(a - getattr(small_fit, f"{k}_pred_")[i])))
                    for k, a in zip(("teff", "logg", "mh", "am", "cm"), small_fit.axes_)]
            f = small_fit.templates_[np.ravel_multi_index(near, (3,) * 5)].astype(np.float64)
            assert small_fit.chi2_pred_[i] <= _chi2(x[i], f, w[i]) * (1 + 1e-9)
    assert np.abs(np.array(preds) - OFF_NODE[:, 1]).max() <= 0.5


def test_saved_first_version_model_loads_as_3d_grid(tmp_path, cache):
    from engine.models.templatefit_adapter import TemplateFitAdapter

    meta = {"teff": list(GRID["teff"]), "logg": list(GRID["logg"]), "mh": list(GRID["mh"]),
            "refine_steps": 4, "cache_key": "x", "cache_dir": str(cache)}
    (tmp_path / "templatefit.json").write_text(json.dumps(meta))
    est = TemplateFitAdapter().load(tmp_path)
    assert est.am == (0.0, 0.0, 1.0) and est.cm == (0.0, 0.0, 1.0) and est.n_templates_ == 27


def _link_dataset(ws, tiny_dataset, name, manifest):
    root = ws / "datasets" / name
    for shard in tiny_dataset.glob("*/dataset.h5"):
        (root / shard.parent.name).mkdir(parents=True)
        (root / shard.parent.name / "dataset.h5").symlink_to(shard)
    (root / "dataset.json").write_text(json.dumps(manifest))
    return root


def _cli_run(ws, dataset):
    env = {**os.environ, "LOGG_WORKSPACE": str(ws)}
    return subprocess.run([sys.executable, "-c", "from engine.cli import main; main()",
                           "run", "template-fit", "--size", "100", "--dataset", dataset,
                           "--preset", "template-fit-fast"],
                          capture_output=True, text=True, env=env, timeout=600)


def test_template_fit_refuses_a_dataset_not_built_by_the_generator(_isolated_workspace,
                                                                   tiny_dataset):
    manifest = json.loads((tiny_dataset / "dataset.json").read_text())
    manifest.pop("generator")                   # what a pfsspec/BOSZ import looks like
    _link_dataset(_isolated_workspace, tiny_dataset, "foreign", manifest)
    out = _cli_run(_isolated_workspace, "foreign")
    assert out.returncode != 0
    assert "template-fit needs a dataset built by the project's generator" in (
        out.stdout + out.stderr)
    root = _isolated_workspace / "datasets" / "foreign"
    assert not list(root.joinpath(".cache").glob("templatefit_*.npy"))   # nothing built


def test_template_fit_refuses_data_of_an_older_generator_version(_isolated_workspace,
                                                                 tiny_dataset):
    """A v2 dataset built by generator 2.0 is not what this logg's lte physics synthesises:
    the run refuses with both versions named, before building any template."""
    manifest = json.loads((tiny_dataset / "dataset.json").read_text())
    manifest["generator_version"] = "2.0"
    manifest["generator"] = {**manifest["generator"], "physics": "lte"}
    _link_dataset(_isolated_workspace, tiny_dataset, "old-lte", manifest)
    out = _cli_run(_isolated_workspace, "old-lte")
    text = out.stdout + out.stderr
    assert out.returncode != 0 and "Traceback" not in text
    assert "built by generator 2.0" in text and "'lte' physics is generator" in text
    root = _isolated_workspace / "datasets" / "old-lte"
    assert not list(root.joinpath(".cache").glob("templatefit_*.npy"))


def test_templates_are_the_datasets_own_physics(tmp_path):
    """The physics read from dataset.json picks the forward model, and keys the cache apart
    (v1 keys unchanged); a saved model reloads with its physics."""
    from engine.generator.physics import generator_version
    from engine.models.templatefit_adapter import TemplateFitAdapter, _require_generated

    for physics in ("me", "lte"):
        (tmp_path / physics).mkdir()
        (tmp_path / physics / "dataset.json").write_text(json.dumps(
            {"generator_version": generator_version(physics),
             "generator": {"physics": physics}}))
        assert _require_generated(tmp_path / physics) == physics
    ad = TemplateFitAdapter()
    me, lte = (ad.build(ad.presets["template-fit-fast"]) for _ in range(2))
    lte.physics = "lte"
    assert me.cache_key() != lte.cache_key()
    assert me.cache_key() == TemplateFit(**{k: getattr(me, k) for k in (
        "teff", "logg", "mh", "am", "cm")}, refine_levels=me.refine_levels).cache_key()
    lte.templates_, lte.n_templates_ = np.zeros((1, 1), np.float32), 1
    ad.save(lte, tmp_path / "model")
    meta = json.loads((tmp_path / "model" / "templatefit.json").read_text())
    assert meta["physics"] == "lte"


@pytest.mark.slow
def test_template_fit_run_end_to_end(_isolated_workspace, tiny_dataset):
    ws = _isolated_workspace
    root = _link_dataset(ws, tiny_dataset, "tiny",
                         json.loads((tiny_dataset / "dataset.json").read_text()))
    out = _cli_run(ws, "tiny")
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


def test_adapter_fits_the_rows_it_is_given_with_their_errors(small_fit, tiny_dataset):
    """predict gets the split and its rows (PredictContext): rows [3, 9) are fitted with
    rows [3, 9) of the split's 1σ errors (other rows' errors give another fit)."""
    from engine.models.contract import PredictContext
    from engine.models.templatefit_adapter import TemplateFitAdapter

    with Dataset(tiny_dataset) as ds:
        test = ds.split("test")
        X, err = test.noisy(1.0)[3:9], test.read("error")[3:9]

        def fit(start):
            return TemplateFitAdapter().predict(
                small_fit, PredictContext(split=test, flux=X, noise_level=1.0, start=start))

        got = fit(3)
        np.testing.assert_array_equal(got, small_fit.predict(X, err))
        assert not np.array_equal(fit(0), got)
