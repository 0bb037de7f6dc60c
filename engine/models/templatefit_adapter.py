"""The template-fit baseline behind `logg-engine run template-fit`.

Nothing is trained; `train` builds/loads the node templates (cached under
`<dataset>/.cache`). The templates come from the project's forward model, so the fit is
only meaningful on a dataset that model generated: `train` refuses a dataset whose
dataset.json has no `generator` block (e.g. a pfsspec/BOSZ import) with a DataError.

The χ² needs each test spectrum's 1σ error, but the runner's `predict(est, X)` passes
only the noisy flux, so `train` binds the run's test split
(name from run.json's spec) and `predict` looks each row of X up in that split's frozen
noisy array (exact byte match) to fetch its `error` row. A row that is not in the test
split is a RunError: a χ² fit without per-pixel errors would be a different model."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np

from engine.atomic import write_json
from engine.errors import DataError, RunError
from engine.models.templatefit import LABELS, TemplateFit, prior_axis


class TemplateFitAdapter:
    name = "template-fit"
    presets: dict[str, dict] = {
        # 5-D grid: BOSZ steps for T_eff and [M/H]; log g every 1 dex (its quadratic
        # interpolation error is negligible: χ² < 0.03 at SNR 10, vs up to ~5 for T_eff
        # at 500 K), 3 nodes across the prior box for [α/M] and [C/M]:
        # 10·5·14·3·3 = 6300 templates
        "template-fit": {"teff": [3750.0, 6000.0, 250.0], "logg": [1.0, 5.0, 1.0],
                         "mh": [-2.5, 0.75, 0.25], "am": list(prior_axis("a_M")),
                         "cm": list(prior_axis("C_M")), "refine_levels": 5},
        # the first version: [α/M] = [C/M] = 0 fixed (kept to compare against)
        "template-fit-3d": {"teff": [3750.0, 6000.0, 250.0], "logg": [1.0, 5.0, 0.5],
                            "mh": [-2.5, 0.75, 0.25], "am": [0.0, 0.0, 1.0],
                            "cm": [0.0, 0.0, 1.0], "refine_levels": 4},
        # for tests: 4·5·4·2·2 = 320 templates
        "template-fit-fast": {"teff": [3750.0, 6000.0, 750.0], "logg": [1.0, 5.0, 1.0],
                              "mh": [-2.5, 0.75, 1.0], "am": list(prior_axis("a_M", 2)),
                              "cm": list(prior_axis("C_M", 2)), "refine_levels": 2},
    }

    def build(self, params: dict) -> TemplateFit:
        return _from_params(dict(params))

    def train(self, est: TemplateFit, ctx: Any) -> TemplateFit:
        if ctx.dataset_root is not None:
            _require_generated(Path(ctx.dataset_root))
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
        return {"n_templates": est.n_templates_, **_params(est)}

    def save(self, est: TemplateFit, directory: Path) -> None:
        """Grid parameters only (JSON): the templates are rebuilt or read from the cache."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        meta = {**_params(est), "cache_key": est.cache_key(),
                "cache_dir": None if est.cache_dir is None else str(est.cache_dir)}
        write_json(directory / "templatefit.json", meta, indent=1, safe=False)

    def load(self, directory: Path) -> TemplateFit:
        meta = json.loads((Path(directory) / "templatefit.json").read_text())
        est = _from_params(meta)
        est.cache_dir = meta.get("cache_dir")
        return est.fit()


def _params(est: TemplateFit) -> dict[str, Any]:
    return {**{k: list(getattr(est, k)) for k in LABELS}, "refine_levels": est.refine_levels}


def _from_params(p: dict) -> TemplateFit:
    """Estimator from preset/saved parameters. A saved model of the first (3-D) version
    has no `am`/`cm` (they were fixed at 0) and a `refine_steps` instead of levels."""
    fixed = [0.0, 0.0, 1.0]
    return TemplateFit(teff=tuple(p["teff"]), logg=tuple(p["logg"]), mh=tuple(p["mh"]),
                       am=tuple(p.get("am", fixed)), cm=tuple(p.get("cm", fixed)),
                       refine_levels=int(p.get("refine_levels", 4)))


def _require_generated(root: Path) -> None:
    """DataError unless dataset.json says the project's generator built the dataset: the
    templates are that generator's spectra, and χ² against another model's spectra (a
    pfsspec/BOSZ set) would measure the model mismatch, not log g."""
    from engine.io.dataset import MANIFEST

    path = root / MANIFEST
    try:
        doc = json.loads(path.read_text()) if path.exists() else {}
    except (OSError, ValueError):
        doc = {}
    if not isinstance(doc, dict) or not doc.get("generator"):
        raise DataError("template-fit needs a dataset built by the project's generator "
                        "(dataset.json has no `generator` block)", path=path,
                        key="template-fit",
                        hint="build one with `logg-engine data generate`; the templates are "
                             "that forward model's spectra, so fitting other data (e.g. a "
                             "pfsspec/BOSZ set) would measure model mismatch, not log g")


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
