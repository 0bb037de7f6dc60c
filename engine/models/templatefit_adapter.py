"""The template-fit baseline behind `logg-engine run template-fit`.

Nothing is trained; `train` builds/loads the node templates (cached under
`<dataset>/.cache`). The χ² needs each test spectrum's 1σ error, but the runner's
`predict(est, X)` passes only the noisy flux, so `train` binds the run's test split
(name from run.json's spec) and `predict` looks each row of X up in that split's frozen
noisy array (exact byte match) to fetch its `error` row. A row that is not in the test
split is a RunError: a χ² fit without per-pixel errors would be a different model."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np

from engine.errors import RunError
from engine.models.templatefit import TemplateFit


class TemplateFitAdapter:
    name = "template-fit"
    presets: dict[str, dict] = {
        "template-fit": {"teff": [3750.0, 6000.0, 250.0], "logg": [1.0, 5.0, 0.5],
                         "mh": [-2.5, 0.75, 0.25], "refine_steps": 4},
        "template-fit-fast": {"teff": [3750.0, 6000.0, 750.0], "logg": [1.0, 5.0, 1.0],
                              "mh": [-2.5, 0.75, 1.0], "refine_steps": 2},
    }

    def build(self, params: dict) -> TemplateFit:
        p = dict(params)
        return TemplateFit(teff=tuple(p["teff"]), logg=tuple(p["logg"]), mh=tuple(p["mh"]),
                           refine_steps=int(p.get("refine_steps", 4)))

    def train(self, est: TemplateFit, ctx: Any) -> TemplateFit:
        if ctx.dataset_root is not None:
            est.cache_dir = Path(ctx.dataset_root) / ".cache"
        est.fit(callbacks=ctx.callbacks)
        est.error_lookup_ = _TestErrors.from_run(ctx)
        return est

    def predict(self, est: TemplateFit, X: np.ndarray) -> np.ndarray:
        lookup = getattr(est, "error_lookup_", None)
        if lookup is None:
            raise RunError("template-fit needs the per-pixel errors of the spectra it fits",
                           hint="predict inside a run (the test split's `error` is bound "
                                "by train), or call TemplateFit.predict(X, error)")
        return est.predict(X, lookup.errors_for(X))

    def describe(self, est: TemplateFit) -> dict[str, Any]:
        return {"n_templates": est.n_templates_, "refine_steps": est.refine_steps,
                "teff": list(est.teff), "logg": list(est.logg), "mh": list(est.mh)}

    def save(self, est: TemplateFit, directory: Path) -> None:
        """Grid parameters only (JSON): the templates are rebuilt or read from the cache."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        meta = {"teff": list(est.teff), "logg": list(est.logg), "mh": list(est.mh),
                "refine_steps": est.refine_steps, "cache_key": est.cache_key(),
                "cache_dir": None if est.cache_dir is None else str(est.cache_dir)}
        tmp = directory / ".templatefit.json.tmp"
        tmp.write_text(json.dumps(meta, indent=1))
        tmp.replace(directory / "templatefit.json")

    def load(self, directory: Path) -> TemplateFit:
        meta = json.loads((Path(directory) / "templatefit.json").read_text())
        est = TemplateFit(teff=tuple(meta["teff"]), logg=tuple(meta["logg"]),
                          mh=tuple(meta["mh"]), refine_steps=meta["refine_steps"],
                          cache_dir=meta["cache_dir"])
        return est.fit()


class _TestErrors:
    """Row lookup: noisy-flux row bytes → the matching 1σ error row of the test split."""

    def __init__(self, noisy: np.ndarray, error: np.ndarray, noise_level: float) -> None:
        self.index = {_digest(r): i for i, r in enumerate(noisy)}
        self.error = error
        self.noise_level = float(noise_level)

    @classmethod
    def from_run(cls, ctx: Any) -> "_TestErrors | None":
        run_json = Path(ctx.run_dir) / "run.json"
        if ctx.dataset_root is None or not run_json.exists():
            return None
        from engine.io.dataset import Dataset
        from engine.runs.spec import RunSpec

        spec = RunSpec.from_json(json.loads(run_json.read_text())["spec"])
        ds = Dataset(ctx.dataset_root)
        try:
            test = ds.split(spec.test_split)
            return cls(np.ascontiguousarray(test.noisy(spec.noise_level), np.float32),
                       test.read("error"), spec.noise_level)
        finally:
            ds.close()

    def errors_for(self, X: np.ndarray) -> np.ndarray:
        X = np.ascontiguousarray(X, np.float32)
        rows = [self.index.get(_digest(r)) for r in X]
        if any(r is None for r in rows):
            raise RunError("template-fit got spectra that are not in the run's test split",
                           hint="the χ² weights come from the test split's `error` array")
        return self.error[np.asarray(rows)] * self.noise_level


def _digest(row: np.ndarray) -> bytes:
    return hashlib.blake2b(row.tobytes(), digest_size=16).digest()
