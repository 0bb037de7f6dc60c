"""One small error hierarchy. Messages name the file/field and the fix; the CLI maps
each class to an exit code and prints it without a traceback."""

from __future__ import annotations

from pathlib import Path


class EngineError(Exception):
    """Base class of every error the engine raises on purpose."""

    exit_code = 1

    def __init__(self, message: str, *, path: str | Path | None = None,
                 key: str | None = None, hint: str | None = None) -> None:
        self.message = message
        self.path = None if path is None else str(path)
        self.key = key
        self.hint = hint
        super().__init__(self.render())

    def render(self) -> str:
        parts = []
        if self.path:
            parts.append(f"{self.path}")
        if self.key:
            parts.append(f"[{self.key}]")
        head = " ".join(parts)
        text = f"{head}: {self.message}" if head else self.message
        if self.hint:
            text += f"\n  fix: {self.hint}"
        return text


class DataError(EngineError):
    """A dataset or spectrum file is missing, malformed or inconsistent."""

    exit_code = 3


class StoreError(EngineError):
    """The results store is unusable (foreign file, bad schema, lock timeout)."""

    exit_code = 4


class SpecError(EngineError):
    """Bad user input: unknown preset, bad size, unknown override key, ..."""

    exit_code = 2


class RunError(EngineError):
    """A run failed for a reason that is not bad data (divergence, collapse, ...)."""

    exit_code = 5
