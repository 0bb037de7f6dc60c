"""Generator v2's speed work must not change a single bit of its spectra, and must keep the
forward model one torch.compile graph (docs/generator-v2.md, Speed): the eager blocks of
the Voigt cores and of the formal solution against the one-block form, and dynamo's own
account of graph breaks."""

from __future__ import annotations

import pytest
import torch

from engine.generator.lte import synth
from engine.generator.lte.synth import ForwardModel

THETA = torch.tensor([[3750, 1.0, -2.5, -0.25, -0.75], [6000, 5.0, 0.75, 0.5, 0.5],
                      [4800, 3.0, -0.5, 0.1, 0.0]], dtype=torch.float32)


@pytest.fixture(scope="module")
def model():
    return ForwardModel()


def test_eager_blocks_are_bit_identical_to_one_block(model, monkeypatch):
    """Blocks of CORE_ROWS rows and TRANSFER_STARS stars against blocks as large as the
    batch (the code before the blocking): the same float32 bits, flux and residual."""
    with torch.no_grad():
        blocked, resid = model(THETA), model.residual(THETA)
        monkeypatch.setattr(synth, "CORE_ROWS", 10 ** 6)
        monkeypatch.setattr(synth, "TRANSFER_STARS", 10 ** 6)
        whole, resid_whole = model(THETA), model.residual(THETA)
    assert torch.equal(blocked, whole)
    assert torch.equal(resid, resid_whole)


def test_forward_model_is_one_compiled_graph(model):
    """A graph break (e.g. a numpy call inside the formal solution, as before) leaves the
    code after it eager: compiled synthesis was 1.75× slower for that one break."""
    with torch.no_grad():
        ex = torch._dynamo.explain(model)(THETA[:2])
    assert ex.graph_break_count == 0, [b.reason.splitlines()[0] for b in ex.break_reasons]
    assert ex.graph_count == 1
