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
