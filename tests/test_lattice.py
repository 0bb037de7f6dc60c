"""The node-lattice path (engine/generator/lte/lattice.py, node_store.py): exact at nodes, close to direct
synthesis between nodes, and it synthesises each node once."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import h5py
import numpy as np
import pytest

from engine.errors import DataError
from engine.generator.build import build_dataset, shard_rng
from engine.generator.lte import node_store
from engine.generator.lte.lattice import (LatticeSynth, catmull_rom, interpolate, node_index,
                                          plan)
from engine.generator.lte.node_store import N_NODES, NodeLattice, flat_index, node_theta
from engine.generator.lte.synth import BatchSynth
from engine.generator.presets import Preset, ShardSpec
from engine.generator.priors import BOX, sample_labels


def test_catmull_rom_weights_interpolate_cubics_exactly():
    t = np.linspace(0, 0.99, 7)
    w = catmull_rom(t)
    np.testing.assert_allclose(w.sum(1), 1.0, atol=1e-12)
    x = np.array([-1.0, 0.0, 1.0, 2.0])
    for poly in (lambda z: 3 + 2 * z, lambda z: z * z - z):          # ≤ quadratic: exact
        np.testing.assert_allclose(w @ poly(x), poly(t), atol=1e-12)


def test_lattice_matches_direct_synthesis():
    direct = BatchSynth(8)
    lat = LatticeSynth(direct)
    theta = np.array([[4750.0, 2.5, -0.5, 0.25, 0.0],          # on nodes
                      [4750.0, 2.5, -0.5, 0.25, -0.1],         # free [C/M]
                      [4890.0, 2.5, -0.5, 0.25, 0.0],          # free T_eff
                      [4750.0, 2.5, -0.62, 0.25, 0.0]])        # free [M/H]
    got = lat(theta)
    ref = direct(theta)
    np.testing.assert_allclose(got[0], ref[0], atol=1e-6)       # a node is the node
    np.testing.assert_allclose(np.median(got, 1), 0.5, rtol=1e-6)
    rms = np.sqrt(((got - ref) ** 2).mean(1))
    assert rms[1:].max() < 0.01, rms                            # measured 1e-4–2e-3
    n_first = lat.nodes_synthesised
    assert n_first <= 1 + 3 * 3                                 # 4 nodes per free axis, shared
    lat(theta)
    assert lat.nodes_synthesised == n_first                     # cached


def test_node_index_flags_the_free_axis():
    u, on = node_index(np.array([[4750.0, 2.5, -0.5, 0.25, -0.1]]))
    assert on[0].tolist() == [True, True, True, True, False]
    np.testing.assert_allclose(u[0, :2], [4.0, 3.0])


# --------------------------------------------------------------------------------------
# Vectorised interpolation against the per-row code it replaced, and the persistent store.

PIX = 4096


def smooth_nodes(theta: np.ndarray) -> np.ndarray:
    """A cheap, smooth, θ-dependent stand-in spectrum with median ≈ 0.5, for checking the
    interpolation arithmetic only (the physics is checked with BatchSynth above)."""
    x = np.linspace(0, 1, PIX)[None, :]
    t = (theta - node_store.LO) / (node_store.STEP * np.array(N_NODES))
    f = 0.5 + 0.2 * np.sin(6 * x + 3 * t[:, :1]) * t[:, 1:2] + 0.05 * np.cos(
        11 * x * (1 + t[:, 2:3])) + 0.03 * t[:, 3:4] * x - 0.02 * t[:, 4:5] * x * x
    f = f.astype(np.float32)
    return (f * (0.5 / np.median(f, 1, keepdims=True))).astype(np.float32)


def reference_rows(lat: NodeLattice, theta: np.ndarray) -> np.ndarray:
    """The per-row loop LatticeSynth used before vectorisation (commit 85eae15)."""
    u, on = node_index(theta)
    n = len(u)
    free = np.where((~on).any(1), np.argmax(~on, 1), 0)
    base = np.round(u).astype(int)
    i0 = np.floor(u[np.arange(n), free]).astype(int)
    t = u[np.arange(n), free] - i0
    w = np.where((~on).any(1)[:, None], catmull_rom(t), np.array([0.0, 1.0, 0.0, 0.0]))
    out = np.empty((n, PIX), np.float32)
    for r in range(n):
        f = 0.0
        for j, off in enumerate((-1, 0, 1, 2)):
            k = base[r].copy()
            k[free[r]] = int(np.clip(i0[r] + off, 0, N_NODES[free[r]] - 1))
            f = f + w[r, j] * lat.flux[lat.rows(flat_index(k))].astype(np.float64)
        out[r] = f * (0.5 / np.median(f))
    return out


def snapped_theta(n: int, seed: int = 1) -> np.ndarray:
    theta, _ = sample_labels(np.random.default_rng(seed), n, snap=True)
    lo = np.array([v[0] for v in BOX.values()])
    hi = np.array([v[1] for v in BOX.values()])
    edges = np.array([lo, hi, lo + [0, 0, 0, 0, 0.1], hi - [10.0, 0, 0, 0, 0],
                      hi - [0, 0.01, 0, 0, 0], lo + [0, 0, 0.2, 0, 0]])   # box edges, clipped
    return np.concatenate([theta, edges])


def test_vectorised_interpolation_equals_the_per_row_code():
    theta = snapped_theta(300)
    lat = NodeLattice(None)
    keys, w = plan(theta)
    lat.ensure(keys, smooth_nodes)
    np.testing.assert_allclose(w.sum(1), 1.0, atol=1e-12)          # Catmull–Rom: partition of 1
    got = interpolate(lat.flux, lat.rows(keys), w, block=37)      # odd block: block edges
    ref = reference_rows(lat, theta)
    np.testing.assert_allclose(got, ref, rtol=2e-7, atol=1e-7)    # float32 rounding
    on = node_index(theta)[1].all(1)
    assert on.sum() >= 2
    nodes = flat_index(np.round(node_index(theta[on])[0]).astype(int))
    np.testing.assert_allclose(got[on], lat.flux[lat.rows(nodes)], rtol=1e-6)  # exact at nodes


def test_plan_refuses_two_free_axes_and_points_outside_the_box():
    with pytest.raises(ValueError, match="at most one off-node"):
        plan(np.array([[4800.0, 2.6, -0.5, 0.25, 0.0]]))
    with pytest.raises(ValueError, match="outside the prior box"):
        plan(np.array([[6250.0, 2.5, -0.5, 0.25, 0.0]]))


def test_lattice_key_changes_with_what_determines_a_node():
    ident = node_store.lattice_identity()
    key = node_store.lattice_key(ident)
    assert key.startswith("v2.2-") and key == node_store.lattice_key()
    for change in ({"lsf_fwhm": 1.8}, {"normalise": "smooth"},
                   {"data": {**ident["data"], "linelist_lte.csv": "0" * 64}}):
        assert node_store.lattice_key({**ident, **change}) != key


class Counting:
    """A synthesiser wrapper that records which nodes it was asked for."""

    def __init__(self, synth):
        self.synth, self.batch, self.calls = synth, getattr(synth, "batch", 8), 0

    def __call__(self, theta):
        self.calls += len(theta)
        return self.synth(theta)


def test_persistent_lattice_resumes_after_a_kill(tmp_path):
    """Segments survive, a dead writer's temporary file is removed, a corrupted segment is
    deleted and only its nodes are synthesised again (real v2 model, 6 nodes)."""
    root = tmp_path / "lattice"
    nodes = flat_index(np.array([[4, 3, 8, 1, c] for c in range(6)]))   # one [C/M] line
    synth = Counting(BatchSynth(8))
    lat = NodeLattice(root, segment_nodes=2)
    events = []
    assert lat.ensure(nodes, synth, [lambda e, **f: events.append((e, f))]) == 6
    assert synth.calls == 6
    prog = [f for e, f in events if e == "progress"]
    assert prog[-1]["done"] == prog[-1]["total"] == 6 and prog[-1]["eta_s"] == 0
    first = lat.flux[lat.rows(nodes)].copy()
    np.testing.assert_allclose(first, BatchSynth(8)(node_theta(nodes)), atol=1e-6)
    segs = sorted(lat.dir.glob("seg-*.npz"))
    assert len(segs) == 3

    # a build killed mid-write: its pid is gone and its temporary segment is left behind
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    tmp = lat.dir / f".seg-00009-1-{dead.pid}.npz.{dead.pid}-abcdef.tmp"
    tmp.write_bytes(b"PK\x03\x04 torn")
    # and a segment damaged on disk
    raw = bytearray(segs[1].read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    segs[1].write_bytes(bytes(raw))

    log = []
    again = NodeLattice(root, segment_nodes=2, callbacks=[lambda e, **f: log.append(f)])
    assert not tmp.exists()
    assert again.discarded == [segs[1].name] and not segs[1].exists()
    assert again.n_stored == 4 and any("failed verification" in m.get("message", "") for m in log)
    synth.calls = 0
    assert again.ensure(nodes, synth) == 2 and synth.calls == 2
    np.testing.assert_allclose(again.flux[again.rows(nodes)], first, atol=1e-6)
    assert NodeLattice(root).ensure(nodes, synth) == 0 and synth.calls == 2


def test_segment_from_another_lattice_and_disk_space_are_clear_errors(tmp_path):
    lat = NodeLattice(tmp_path, key="v2.0-other", segment_nodes=4)
    lat.ensure([0, 1], smooth_nodes)
    seg = next(lat.dir.glob("seg-*.npz"))
    mine = NodeLattice(tmp_path, key="v2.0-mine")
    with pytest.raises(DataError, match="belongs to lattice v2.0-other"):
        mine._read_segment(seg)
    with pytest.raises(DataError, match="not enough disk space for the node lattice") as exc:
        mine._check_space(10 ** 12)
    assert "nothing was written" in exc.value.render()


def test_snapped_v2_build_fills_the_workspace_lattice_and_reuses_it(tmp_path):
    """Two snapped v2 builds in one workspace: the first synthesises the nodes (its own
    progress bar, in nodes), the second none, and both write the same spectra, equal to
    interpolating directly synthesised nodes."""

    snap = Preset("snap4", (ShardSpec("train_3_0", 3),), snap=True)
    ws = tmp_path / "ws"
    ev1, ev2 = [], []
    a = build_dataset(snap, name="a", workspace=ws, physics="lte", compile="off", batch=8,
                      callbacks=[lambda e, **f: ev1.append((e, f))])
    b = build_dataset(snap, name="b", workspace=ws, physics="lte", compile="off", batch=8,
                      callbacks=[lambda e, **f: ev2.append((e, f))])
    starts = [f for e, f in ev1 if e == "start"]
    assert starts[0]["unit"] == "nodes" and starts[1]["unit"] == "spectra"
    assert 1 <= starts[0]["total"] <= 12
    assert [f["unit"] for e, f in ev2 if e == "start"] == ["spectra"]
    with h5py.File(a / "train_3_0" / "dataset.h5") as fa, h5py.File(b / "train_3_0" / "dataset.h5") as fb:
        fla, flb = fa["dataset/arrays/flux/value"][:], fb["dataset/arrays/flux/value"][:]
    np.testing.assert_array_equal(fla, flb)
    lat = NodeLattice(ws / "cache" / "lattice")
    assert lat.n_stored == starts[0]["total"]
    theta, _ = sample_labels(shard_rng(0, "train_3_0"), 3, snap=True)
    keys, w = plan(theta)
    direct = NodeLattice(None)
    direct.ensure(keys, BatchSynth(8))
    np.testing.assert_allclose(fla, interpolate(direct.flux, direct.rows(keys), w), atol=1e-5)


def _cli(*args, ws):
    env = dict(os.environ, LOGG_WORKSPACE=str(ws))
    return subprocess.run([sys.executable, "-m", "engine.cli", "data", "lattice", *args],
                          capture_output=True, text=True, env=env, timeout=300)


def test_cli_status_build_clear(tmp_path):
    ws = tmp_path / "ws"
    r = _cli("build", "--limit", "2", "--compile", "off", "--batch", "2", ws=ws)
    assert r.returncode == 0, r.stderr
    assert "2 of 30240 nodes stored" in r.stdout
    r = _cli("status", "--json", ws=ws)
    st = json.loads(r.stdout)
    assert st["nodes_stored"] == 2 and st["segments"] == 1 and st["bytes"] > 2 * PIX * 4
    stale = ws / "cache" / "lattice" / "v1.9-old"
    stale.mkdir()
    (stale / "x").write_bytes(b"12345")
    r = _cli("status", ws=ws)
    assert "2 of 30240 nodes stored" in r.stdout and "stale lattice v1.9-old" in r.stdout
    r = _cli("build", "--limit", "0", ws=ws)
    assert r.returncode == 2 and "Traceback" not in r.stderr and "--limit" in r.stderr
    r = _cli("clear", ws=ws)
    assert r.returncode == 0 and st["key"] in r.stdout and stale.exists()
    r = _cli("clear", "--all", ws=ws)
    assert "v1.9-old" in r.stdout and not stale.exists()
    assert json.loads(_cli("status", "--json", ws=ws).stdout)["nodes_stored"] == 0
