"""Shared fixtures. Keep them small and offline."""

from __future__ import annotations

import os

import pytest


@pytest.fixture(autouse=True)
def _isolated_workspace(tmp_path, monkeypatch):
    """Every test gets its own workspace unless it asks for another."""
    ws = tmp_path / "ws"
    monkeypatch.setenv("LOGG_WORKSPACE", str(ws))
    monkeypatch.setenv("PYTHONHASHSEED", "0")
    yield ws


def pytest_configure(config):
    os.environ.setdefault("OMP_NUM_THREADS", "2")


@pytest.fixture(scope="session")
def tiny_dataset(tmp_path_factory):
    """The `tiny` preset built once per test session (seed 0, eager, no CRLB columns for
    speed: crlb_log_g/crlb_schur are NaN). Returns the dataset folder (a Path); treat it
    as read-only."""
    from engine.generator.build import build_dataset

    root = tmp_path_factory.mktemp("datasets") / "tiny"
    return build_dataset("tiny", out=root, seed=0, crlb=False, compile="off")
