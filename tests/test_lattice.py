"""The node-lattice path (engine/generator/lattice.py): exact at nodes, close to direct
synthesis between nodes, and it synthesises each node once."""

from __future__ import annotations

import numpy as np

from engine.generator.lte.lattice import LatticeSynth, catmull_rom, node_index
from engine.generator.lte.synth import BatchSynth


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
