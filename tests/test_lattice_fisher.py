"""The lattice Jacobian/CRLB (engine/generator/lte/lattice_fisher.py) against oracles, on
synthetic node lattices (cheap stand-in spectra; the physics is not what is checked here):

* a lattice whose spectra are a known quadratic of θ with a fixed median, where grid
  central differences and the Catmull–Rom slope are exact → J and the CRLB equal the
  analytic ones to rounding;
* on-node rows equal np.gradient of the node array (central inside, one-sided at edges);
* the free-axis slope equals a fine finite difference of lattice.interpolate (with its
  renormalisation to median 0.5)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from engine.generator.fisher import crlb_from_fisher, fisher_matrix
from engine.generator.lte import lattice_fisher
from engine.generator.lte.lattice import interpolate, node_index, plan
from engine.generator.lte.node_store import LO, N_NODES, STEP, NodeLattice, flat_index
from engine.generator.priors import sample_labels

PIX = 4096
HALF = (PIX - 2) // 2          # pixels below / above the two pixels that hold the median


class Quadratic:
    """μ_p(θ) = a_p + b_p·u + uᵀC_p u (u = node coordinates) on the pixels below and above
    the median, and exactly 0.5 on two pixels that stay the two middle ranks: the median is
    0.5 at every θ, so lattice.interpolate's renormalisation is the identity. Coefficients
    are multiples of 2⁻¹⁶ and nodes have integer u, so node spectra are exact in float32."""

    def __init__(self, seed: int = 0) -> None:
        rng = np.random.default_rng(seed)
        n = PIX - 2
        self.a = np.where(np.arange(n) < HALF, 0.2, 0.8)
        self.b = rng.integers(-40, 41, (n, 5)) / 2.0 ** 16
        c = rng.integers(-4, 5, (n, 5, 5)) / 2.0 ** 16
        self.c = (c + c.transpose(0, 2, 1)) / 2

    def __call__(self, theta: np.ndarray) -> np.ndarray:
        u = (np.asarray(theta, np.float64) - LO) / STEP
        var = self.a + u @ self.b.T + np.einsum("ni,pij,nj->np", u, self.c, u)
        assert (np.abs(var - self.a) < 0.09).all()          # stays on its side of 0.5
        return np.concatenate([np.full((len(u), 2), 0.5), var], 1).astype(np.float32)

    def jacobian(self, theta: np.ndarray) -> np.ndarray:
        """Analytic ∂μ/∂θ (n, P, 5) in PARAMS units."""
        u = (np.asarray(theta, np.float64) - LO) / STEP
        du = self.b[None] + 2 * np.einsum("pij,nj->npi", self.c, u)
        out = np.concatenate([np.zeros((len(u), 2, 5)), du], 1)
        return out / STEP


def smooth(theta: np.ndarray) -> np.ndarray:
    """A smooth, non-polynomial stand-in spectrum normalised to median 0.5."""
    x = np.linspace(0, 1, PIX)[None, :]
    t = (np.asarray(theta, np.float64) - LO) / (STEP * np.array(N_NODES))
    f = 0.5 + 0.2 * np.sin(6 * x + 3 * t[:, :1]) * (0.3 + t[:, 1:2]) + 0.05 * np.cos(
        11 * x * (1 + t[:, 2:3])) + 0.03 * t[:, 3:4] * x - 0.02 * t[:, 4:5] * x * x
    return (f * (0.5 / np.median(f, 1, keepdims=True))).astype(np.float32)


def lattice_for(theta: np.ndarray, synth) -> NodeLattice:
    lat = NodeLattice(None)
    lat.ensure(lattice_fisher.jacobian_nodes(theta), synth)
    return lat


def interior_rows(n: int, seed: int = 3) -> np.ndarray:
    """Snapped rows whose stencils stay inside the box (no clipping anywhere): snapped
    labels on nodes 1 … N−2, the free one between nodes 1 and N−2."""
    rng = np.random.default_rng(seed)
    hi = np.array(N_NODES) - 2
    u = rng.integers(1, hi + 1, (n, 5)).astype(np.float64)
    free = rng.integers(0, 5, n)
    r = np.arange(n)
    u[r, free] = 1 + (hi[free] - 1) * rng.random(n)
    return LO + STEP * u


def test_quadratic_lattice_gives_the_analytic_jacobian_and_crlb():
    q = Quadratic()
    theta = interior_rows(24)
    assert (~node_index(theta)[1]).any(1).all()               # every row off-node
    lat = lattice_for(theta, q)
    mu, jac = lattice_fisher.jacobian(theta, lat, chunk=7)
    np.testing.assert_allclose(mu, q(theta), atol=1e-12)
    ref = q.jacobian(theta)
    scale = np.abs(ref).max()
    np.testing.assert_allclose(jac, ref, atol=1e-9 * scale, rtol=0)
    err = np.full((len(theta), PIX), 0.02)
    got = lattice_fisher.crlb(theta, err, lat, chunk=5)
    want = crlb_from_fisher(fisher_matrix(torch.from_numpy(ref), torch.from_numpy(err)))
    np.testing.assert_allclose(got.crlb_log_g, want.crlb_log_g, rtol=1e-7)
    np.testing.assert_allclose(got.schur, want.schur, rtol=1e-7)
    assert got.spd.all()


def test_on_node_rows_are_np_gradient_of_the_node_array_edges_one_sided():
    # a small sub-box: every node within it, plus rows on its interior and on box edges
    sub = [slice(0, 3), slice(0, 3), slice(11, 14), slice(0, 4), slice(0, 3)]
    idx = np.stack(np.meshgrid(*[np.arange(s.start, s.stop) for s in sub], indexing="ij"), -1)
    theta_all = LO + STEP * idx.reshape(-1, 5)
    lat = NodeLattice(None)
    lat.ensure(flat_index(idx.reshape(-1, 5)), smooth)
    cube = lat.flux[lat.rows(flat_index(idx))].astype(np.float64)        # (3,3,3,4,3,P)
    want = np.stack([np.gradient(cube, STEP[a], axis=a) for a in range(5)], -1)
    # rows whose neighbours are inside the sub-box, or whose missing side is a box edge:
    # T_eff, log g, C_M nodes 0–1 (0 = low edge), [M/H] nodes 12–13 (13 = high edge)
    loc = idx[:2, :2, 1:, :, :2].reshape(-1, 5) - idx[0, 0, 0, 0, 0]
    glob = idx[:2, :2, 1:, :, :2].reshape(-1, 5)
    rows = LO + STEP * glob
    lat.ensure(lattice_fisher.jacobian_nodes(rows), smooth)
    _, jac = lattice_fisher.jacobian(rows, lat)
    ref = want[tuple(loc.T)]
    np.testing.assert_allclose(jac, ref, rtol=0, atol=1e-6 * np.abs(ref).max())
    edge = (glob == 0).any(1) | (glob[:, 2] == N_NODES[2] - 1) | (glob[:, 3] == N_NODES[3] - 1)
    assert edge.any() and (~edge).any()
    assert len(theta_all) == 3 * 3 * 3 * 4 * 3


def test_free_axis_slope_is_the_derivative_of_the_renormalised_interpolant():
    theta, interp = sample_labels(np.random.default_rng(5), 40, snap=True)
    lat = lattice_for(theta, smooth)
    _, jac = lattice_fisher.jacobian(theta, lat)
    u, on = node_index(theta)
    worst = 0.0
    for r in np.nonzero((~on).any(1))[0][:12]:
        a = int(np.argmax(~on[r]))
        h = 1e-5 * STEP[a]
        pts = np.repeat(theta[r:r + 1], 2, 0)
        pts[0, a] += h
        pts[1, a] -= h
        keys, w = plan(pts)
        f = interpolate(lat.flux, lat.rows(keys), w, dtype=np.float64)
        fd = (f[0] - f[1]) / (2 * h)
        tol = 1e-6 * np.abs(fd).max()
        np.testing.assert_allclose(jac[r, :, a], fd, rtol=0, atol=tol)
        # the renormalisation term matters: the bare spline slope is off by far more
        t = u[r, a] - np.floor(u[r, a])
        bare = lattice_fisher.catmull_rom_slope(np.array([t]))[0] @ lat.flux[
            lat.rows(plan(theta[r:r + 1])[0][0])].astype(np.float64) / STEP[a]
        worst = max(worst, np.abs(bare - fd).max() / tol)
    assert worst > 100


def test_two_free_axes_are_refused():
    theta = LO[None] + STEP * np.array([[1.5, 1.5, 1, 1, 1]])
    with pytest.raises(ValueError, match="at most one off-node"):
        lattice_fisher.jacobian_nodes(theta)


# --------------------------------------------------------------------------------------
# The builder's `--crlb-method`: its CRLB columns, its identity, its refusal.

def _snap_preset():
    from engine.generator.presets import Preset, ShardSpec
    return Preset("snapc", (ShardSpec("train_3_0", 3), ShardSpec("test_3_0", 3, crlb=True,
                                                                  noisy=True)), snap=True)


def test_lattice_crlb_build_columns_manifest_and_identity(tmp_path):
    """A snapped v2 build with --crlb-method lattice, its workspace lattice pre-filled
    with stand-in node spectra (so the physics model is never run): the CRLB columns are
    lattice_fisher.crlb of the stored rows, the method is in the manifest and the build
    signature, and it changes the dataset's fingerprint."""
    import json
    import shutil

    import h5py

    from engine.generator.build import build_dataset, default_crlb_method, shard_rng
    from engine.generator.lte.node_store import lattice_root
    from engine.io.dataset import Dataset
    ws = tmp_path / "ws"
    preset = _snap_preset()
    draws = {s.name: sample_labels(shard_rng(0, s.name), s.rows, snap=True)[0]
             for s in preset.shards}
    lat = NodeLattice(lattice_root(ws))
    lat.ensure(np.concatenate([plan(t)[0].ravel() for t in draws.values()]
                              + [lattice_fisher.jacobian_nodes(draws["test_3_0"])]), smooth)
    events = []
    root = build_dataset(preset, name="a", workspace=ws, physics="lte", compile="off",
                         crlb_method="lattice", callbacks=[lambda e, **f: events.append((e, f))])
    assert not any("forward model" in f.get("message", "") for e, f in events)  # no synthesis
    man = json.loads((root / "dataset.json").read_text())
    assert man["crlb_method"] == "lattice" and man["build"]["crlb_method"] == "lattice"
    with Dataset(root) as ds:
        p = ds.split("test").params
        err = ds.split("test").read("error")
        ident, fp = ds.identity(), ds.fingerprint()
    assert ident["crlb_method"] == "lattice"
    want = lattice_fisher.crlb(draws["test_3_0"], err, NodeLattice(lattice_root(ws)))
    np.testing.assert_allclose(p["crlb_log_g"], want.crlb_log_g, rtol=1e-12)
    np.testing.assert_allclose(p["crlb_schur"], want.schur, rtol=1e-12)
    with h5py.File(root / "test_3_0" / "dataset.h5") as f:
        assert f["dataset/arrays/flux/value"].shape == (3, PIX)
    # identity: the same files with another method (or none = exact) fingerprint apart
    other = tmp_path / "copy"
    shutil.copytree(root, other)
    for method, same in (("exact", False), (None, False), ("lattice", True)):
        doc = dict(man)
        doc.pop("crlb_method")
        if method:
            doc["crlb_method"] = method
        (other / "dataset.json").write_text(json.dumps(doc))
        with Dataset(other) as ds2:
            assert (ds2.fingerprint() == fp) == same, method
    with Dataset(other) as ds2:   # exact and "no method" (older builds) are one identity
        fp_lattice = ds2.fingerprint()
    assert fp_lattice == fp
    # a rerun resumes (the signature with the method matches), skipping both shards
    again = []
    build_dataset(preset, name="a", workspace=ws, physics="lte", compile="off",
                  crlb_method="lattice", callbacks=[lambda e, **f: again.append((e, f))])
    assert sum(f.get("message", "").startswith("skip") for e, f in again) == 2
    assert default_crlb_method("lte", True) == "lattice"
    assert default_crlb_method("lte", False) == default_crlb_method("me", True) == "exact"


def test_exact_and_missing_method_share_one_fingerprint(tmp_path):
    import json

    from engine.io.dataset import Dataset
    from fakes import make_fake_dataset
    root = make_fake_dataset(tmp_path / "f", train_shards=(20,), n_val=5, n_test=5,
                             n_pixels=16)
    man = json.loads((root / "dataset.json").read_text())
    fps = []
    for method in (None, "exact", "lattice"):
        doc = {**man, "generator_version": "2.2"}
        if method:
            doc["crlb_method"] = method
        (root / "dataset.json").write_text(json.dumps(doc))
        with Dataset(root) as ds:
            fps.append(ds.fingerprint())
    assert fps[0] == fps[1] != fps[2]


def test_lattice_crlb_method_on_a_non_lattice_build_is_a_clear_error(tmp_path):
    import subprocess
    import sys

    from engine.errors import SpecError
    from engine.generator.build import build_dataset
    from engine.generator.presets import get_preset
    with pytest.raises(SpecError, match="needs a lattice build") as exc:
        build_dataset("tiny", out=tmp_path / "x", crlb_method="lattice")
    assert exc.value.key == "crlb-method"
    with pytest.raises(SpecError, match="needs a lattice build"):   # lte but not snapped
        build_dataset("tiny", out=tmp_path / "x", physics="lte", crlb_method="lattice")
    with pytest.raises(SpecError, match="unknown CRLB method"):
        build_dataset(get_preset("bosz-1m"), out=tmp_path / "x", physics="lte",
                      crlb_method="fast")
    assert not (tmp_path / "x").exists()
    r = subprocess.run([sys.executable, "-m", "engine.cli", "data", "generate", "--preset",
                        "tiny", "--crlb-method", "lattice", "--out", str(tmp_path / "y")],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2, r.stderr
    assert "needs a lattice build" in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "y").exists()


# --------------------------------------------------------------------------------------
# The grid protocol (engine/generator/calibrate_grid.py).

def full_lattice(values) -> NodeLattice:
    """An in-memory lattice holding every node, spectra = values(u (N, 5)) (N, P)."""
    from engine.generator.lte.node_store import N_TOTAL, node_theta
    lat = NodeLattice(None)
    u = (node_theta(np.arange(N_TOTAL)) - LO) / STEP
    lat.flux = np.ascontiguousarray(values(u), np.float32)
    lat.row_of = np.arange(N_TOTAL)
    return lat


def test_grid_slabs_are_np_gradient_of_the_whole_lattice():
    from engine.generator.calibrate_grid import slab_jacobians
    rng = np.random.default_rng(2)
    b, c = rng.normal(size=(5, 6)), rng.normal(size=(5, 6))
    def values(u):       # normalised to median 0.5, as stored node spectra are
        f = 1 + 0.01 * (u @ b) + 0.001 * (u ** 2 @ c)
        return f * (0.5 / np.median(f, 1, keepdims=True))
    lat = full_lattice(values)
    cube = lat.flux.reshape(N_NODES + (6,)).astype(np.float64)
    want = np.stack([np.gradient(cube, STEP[a], axis=a) for a in range(5)], -1)
    want = want.reshape(-1, 6, 5)
    got = np.concatenate([j for _, _, j in slab_jacobians(lat)])
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-5 * np.abs(want).max())
    # spot check: the lattice Jacobian of on-node rows agrees (same protocol, other code)
    rows = np.array([0, 5, 3024 * 9 + 17, 15000])
    from engine.generator.lte.node_store import node_theta
    lat_j = lattice_fisher.jacobian(node_theta(rows), lat)[1]
    np.testing.assert_allclose(lat_j, want[rows], rtol=0, atol=1e-5 * np.abs(want).max())


def test_grid_figures_equal_the_closed_form_for_a_linear_lattice():
    """Linear spectra: J = B/Δ at every node (np.gradient is exact for a linear function,
    edges included; the float32 J rounds at ~1e-8 relative, hence rel 1e-6); with a
    constant error σ(mag) every node has the same F, so each median is the closed form."""
    from engine.generator.calibrate import VAR_GRID
    from engine.generator.calibrate_grid import grid_figures
    from engine.generator.fisher import SCALE
    rng = np.random.default_rng(4)
    p = 12
    a = 0.5 + rng.integers(0, 64, p) / 2.0 ** 8
    b = rng.integers(-64, 65, (5, p)) / 2.0 ** 12
    lat = full_lattice(lambda u: a + u @ b)
    sigma = {20.0: 0.002, 21.5: 0.01, 22.5: 0.03}
    figs = grid_figures(lat, tuple(sigma), error_fn=lambda f, m: np.full(f.shape, sigma[m]))
    by = {f.name: f.value for f in figs}
    jac = (b / STEP[:, None] * np.array(SCALE)[:, None]).T          # (P, 5), T_eff in kK
    for mag, s in sigma.items():
        fis = jac.T @ jac / s ** 2
        c5 = np.linalg.inv(fis)[1, 1]
        c3 = np.linalg.inv(fis[:3, :3])[1, 1]
        r2 = 1 - min(c5, VAR_GRID) / VAR_GRID
        assert by[f"grid mag {mag:g}: σ_CRLB(log g) 3-D median"] == pytest.approx(np.sqrt(c3), rel=1e-6)
        assert by[f"grid mag {mag:g}: R²_max 5-D median"] == pytest.approx(r2, rel=1e-6, abs=1e-9)
        assert by[f"grid mag {mag:g}: Schur 5-D median"] == pytest.approx(1 / fis[1, 1] / c5, rel=1e-6)
        assert by[f"grid mag {mag:g}: Schur 3-D median"] == pytest.approx(1 / fis[1, 1] / c3, rel=1e-6)
        snr = np.median(np.median(lat.flux.astype(np.float64) / s, 1))
        assert by[f"grid mag {mag:g}: median per-pixel SNR"] == pytest.approx(snr, rel=1e-6)
    bins = [f for f in figs if "T_eff" in f.name]
    assert len(bins) == 9 and all(f.name.startswith("grid mag 21.5") for f in bins)
    assert sum(int(f.note.split()[0]) for f in bins) <= 30240


def test_grid_calibration_refuses_v1_data_and_a_missing_lattice(tmp_path):
    import json
    import subprocess
    import sys

    from engine.errors import DataError, SpecError
    from engine.generator.calibrate_grid import dataset_lattice
    from engine.io.dataset import Dataset
    from fakes import make_fake_dataset
    root = make_fake_dataset(tmp_path / "f", train_shards=(20,), n_val=5, n_test=5,
                             n_pixels=16)
    with Dataset(root) as ds, pytest.raises(SpecError, match="generator v2"):
        dataset_lattice(ds, tmp_path / "ws")
    man = json.loads((root / "dataset.json").read_text())
    (root / "dataset.json").write_text(json.dumps({**man, "generator_version": "2.2"}))
    with Dataset(root) as ds, pytest.raises(DataError) as exc:
        dataset_lattice(ds, tmp_path / "ws")
    assert "data lattice build" in exc.value.render() and "0 of 30240" in exc.value.message
    r = subprocess.run([sys.executable, "-m", "engine.cli", "data", "calibrate", str(root),
                        "--grid", "--no-ridge", "--workspace", str(tmp_path / "ws")],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode != 0 and "Traceback" not in r.stderr
    assert "data lattice build" in r.stderr and "60 min" in r.stderr
    assert not (tmp_path / "ws" / "cache" / "lattice").exists()   # nothing built or written


def test_grid_protocol_agrees_with_the_analysis_grid_fisher():
    """An independent implementation of the same protocol (engine.analysis.ceiling.
    grid_crlb: per-node loop, one-sided edges, Schur by solve) on a curved lattice."""
    import pandas as pd

    from engine.analysis.ceiling import grid_crlb
    from engine.generator.calibrate import VAR_GRID
    from engine.generator.calibrate_grid import grid_arrays
    from engine.generator.lte.node_store import node_theta
    from engine.generator.synth import PARAMS
    rng = np.random.default_rng(6)
    b, c = rng.normal(size=(5, 12)), rng.normal(size=(5, 12))
    lat = full_lattice(lambda u: 0.5 + 0.02 * (u @ b) + 0.003 * np.sin(u @ c))
    res = grid_arrays(lat, (21.5,), error_fn=lambda f, m: np.full(f.shape, 0.01))["mags"][21.5]
    params = pd.DataFrame(node_theta(np.arange(len(lat.flux))), columns=list(PARAMS))
    ref = grid_crlb(lat.flux.astype(np.float64), np.full(lat.flux.shape, 0.01), params)
    assert ref["ok"].all()
    np.testing.assert_allclose(res["schur5"], ref["schur"], rtol=1e-4)
    np.testing.assert_allclose(res["r2"], 1 - np.minimum(ref["crlb"], VAR_GRID) / VAR_GRID,
                               rtol=1e-4, atol=1e-6)


def test_snr_matched_k_reproduces_the_research_grid_snr():
    """The grid protocol's default noise: per magnitude the k at which the median over
    nodes of each node's median per-pixel SNR equals the research grid's SNR; the SNR is
    recomputed here from error_from_flux with that k (an independent evaluation); a
    magnitude without a target keeps k0."""
    from types import SimpleNamespace

    from engine.generator import grids
    from engine.generator.calibrate_grid import matched_error, snr_matched_k
    from engine.generator.noise import error_from_flux
    rng = np.random.default_rng(5)
    x = np.linspace(0, 1, PIX)[None, :]
    flux = 0.5 + 0.1 * np.sin(7 * x + rng.random((64, 1)) * 3) * rng.random((64, 1))
    lat = SimpleNamespace(flux=flux.astype(np.float32))
    targets = {20.0: 24.0, 21.5: 7.1, 22.5: 3.0}
    ks = snr_matched_k(lat, tuple(targets) + (23.0,), targets, stride=1)
    wave, f64 = grids.wave(), lat.flux.astype(np.float64)
    err_fn = matched_error(ks)
    for mag, t in targets.items():
        err = error_from_flux(f64, wave, np.full(64, mag), np.full(64, ks[mag]))
        assert np.median(np.median(f64 / err, 1)) == pytest.approx(t, rel=1e-6)
        np.testing.assert_array_equal(err_fn(f64, mag), err)
    from engine.generator.noise import NoiseConfig
    assert ks[23.0] == NoiseConfig().k0                    # no target: the default k
