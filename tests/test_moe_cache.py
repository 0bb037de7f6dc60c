"""The MoE fit cache (engine.analysis.moe.cache): a second analysis over the same experts
reuses them and scores exactly what a refit scores; anything that changes the fit misses;
an unreadable entry is refitted, never trusted."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from engine.analysis.moe.cache import cache_file, cached
from engine.analysis.moe.pipeline import MoeConfig, run_gate, run_oracle
from fakes import make_toy_analysis_dataset


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    return make_toy_analysis_dataset(tmp_path_factory.mktemp("moecache") / "toy")


def _logs():
    seen: list[str] = []
    return seen, [lambda kind, **kw: seen.append(kw.get("message", "")) if kind == "log" else None]


def _bins(res):
    return {r["bin"]: (r["r2_oracle"], r["r2_global"]) for r in res.records
            if r.get("section") == "bin"}


def test_oracle_then_gate_reuse_fits(dataset, tmp_path):
    ws = tmp_path / "ws"
    cfg = MoeConfig(dataset=str(dataset), size=900, n_boot=50)
    seen, cb = _logs()
    first = run_oracle(ws, cfg, callbacks=cb)
    assert not any("reusing" in m for m in seen)
    assert len(list((ws / "cache" / "moe").glob("*.pkl"))) == 2   # global + experts

    seen, cb = _logs()
    again = run_oracle(ws, cfg, callbacks=cb)
    assert [m for m in seen if "reusing" in m] == [                 # the set holds the global
        m for m in seen if "reusing the fitted experts" in m] and len(seen) > 0
    assert sum("reusing" in m for m in seen) == 1
    assert not any("one pass" in m for m in seen)
    assert _bins(again) == _bins(first)

    seen, cb = _logs()
    run_gate(ws, MoeConfig(dataset=str(dataset), size=900, n_boot=50, gate="logreg",
                           routing="soft"), callbacks=cb)
    assert sum("reusing the fitted experts" in m for m in seen) == 1  # the oracle's, no refit

    seen, cb = _logs()                                # other bins: same global, new experts
    snr = run_oracle(ws, MoeConfig(dataset=str(dataset), bins="snr", size=900, n_boot=50),
                     callbacks=cb)
    assert sum("reusing the fitted global" in m for m in seen) == 1
    assert not any("reusing the fitted experts" in m for m in seen)
    assert any("one pass over 900 training rows for" in m and "global" not in m
               for m in seen)                         # the experts' pass skips the global
    fresh = run_oracle(tmp_path / "ws2", MoeConfig(dataset=str(dataset), bins="snr",
                                                   size=900, n_boot=50))
    # cached global = refitted global (its sums were added in another bin order: to rounding)
    for b, (o, g) in _bins(fresh).items():
        assert _bins(snr)[b] == pytest.approx((o, g), rel=1e-9, abs=1e-12, nan_ok=True)


def test_a_changed_fit_misses_and_a_bad_entry_is_refitted(tmp_path):
    doc = {"dataset": "abc", "train_rows": 900, "seed": 0}
    assert cache_file(tmp_path, "global", doc) != cache_file(tmp_path, "global",
                                                             {**doc, "seed": 1})
    calls = []

    def fit():
        calls.append(1)
        return np.arange(3)

    assert cached(tmp_path, "global", doc, fit).tolist() == [0, 1, 2]
    assert cached(tmp_path, "global", doc, fit).tolist() == [0, 1, 2] and len(calls) == 1
    path = cache_file(tmp_path, "global", doc)
    path.write_bytes(b"not a pickle")
    assert cached(tmp_path, "global", doc, fit).tolist() == [0, 1, 2] and len(calls) == 2
    assert pickle.loads(path.read_bytes()).tolist() == [0, 1, 2]
    assert not [p for p in path.parent.iterdir() if p.name.startswith(".")]  # no tmp left
