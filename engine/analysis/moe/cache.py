"""Fitted MoE experts kept between analyses: `<ws>/cache/moe/<key>.pkl`.

Why: every `moe oracle` and `moe gate` of one study fits the same models — the global model
is the same for SNR and Teff×[M/H] bins, and a gate over Teff×[M/H] bins uses exactly the
experts its oracle used. At 10k rows each fit is minutes (a 4096 × 4096 eigensolve), at 1M
it is a full pass over 16 GB; a study runs six of these analyses. Fitting is deterministic
in everything the key holds (dataset fingerprint, training rows, bins, edge rule, expert
kind, noise level, seed, validation split), so a hit returns what a refit would (a global
Ridge refitted inside another bin scheme's one-pass fit adds the same sums in another order:
equal to rounding). An expert set holds its global model, so a hit on it needs nothing else.

A cache file is written atomically (tmp + rename), so a killed analysis never leaves a
half-written one; a file that fails to load is refitted and replaced. `CACHE_VERSION`
changes whenever the fitting code changes what it fits, so old entries stop matching."""

from __future__ import annotations

import hashlib
import json
import pickle
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from engine.atomic import atomic_path
from engine.events import Callbacks, emit

CACHE_VERSION = 1
T = TypeVar("T")


def cache_key(doc: dict[str, Any]) -> str:
    """A stable digest of what determines a fit (plus the cache version)."""
    text = json.dumps({"v": CACHE_VERSION, **doc}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:20]


def cache_file(ws: Path, what: str, doc: dict[str, Any]) -> Path:
    return Path(ws) / "cache" / "moe" / f"{what}-{cache_key(doc)}.pkl"


def load(ws: Path, what: str, doc: dict[str, Any],
         callbacks: Callbacks | None = None) -> Any | None:
    """The cached fit for `doc`, or None when there is none (or it does not load)."""
    path = cache_file(ws, what, doc)
    if not path.is_file():
        return None
    try:
        with open(path, "rb") as fh:
            value = pickle.load(fh)
    except Exception:  # a stale or unreadable entry is refitted and replaced
        emit(callbacks, "log", message=f"moe: cache entry {path.name} unreadable; refitting")
        return None
    emit(callbacks, "log", message=f"moe: reusing the fitted {what} ({path.name})")
    return value


def store(ws: Path, what: str, doc: dict[str, Any], value: Any) -> None:
    """Keep `value` as the fit for `doc` (atomically: tmp + rename)."""
    path = cache_file(ws, what, doc)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        pickle.dump(value, fh, protocol=pickle.HIGHEST_PROTOCOL)


def cached(ws: Path, what: str, doc: dict[str, Any], fit: Callable[[], T],
           callbacks: Callbacks | None = None) -> T:
    """Load the fit for `doc` from the cache, or run `fit()` and store its result."""
    value = load(ws, what, doc, callbacks)
    if value is None:
        value = fit()
        store(ws, what, doc, value)
    return value
