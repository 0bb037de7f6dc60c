"""The template-fit baseline behind `logg-engine run template-fit`.

Nothing is trained; `train` builds/loads the node templates (cached under
`<dataset>/.cache`). The templates come from the project's forward model, so the fit is
only meaningful on a dataset that model generated: `train` refuses a dataset whose
dataset.json has no `generator` block (e.g. a pfsspec/BOSZ import) with a DataError.

The χ² needs each spectrum's 1σ error: `predict` gets the split it predicts and which of
its rows (engine.models.contract.PredictContext) and reads those rows' `error`, scaled by
the noise level like the noisy flux it fits."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from engine.atomic import write_json
from engine.errors import DataError
from engine.models.contract import PredictContext, TrainContext
from engine.models.templatefit import LABELS, TemplateFit, prior_axis


class TemplateFitAdapter:
    name = "template-fit"
    distributed = False
    resumes = False
    augments = False
    presets: dict[str, dict[str, Any]] = {
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

    def build(self, params: Mapping[str, Any]) -> TemplateFit:
        return _from_params(dict(params))

    def train(self, est: TemplateFit, ctx: TrainContext) -> TemplateFit:
        if ctx.dataset_root is not None:
            est.physics = _require_generated(Path(ctx.dataset_root))
            est.cache_dir = Path(ctx.dataset_root) / ".cache"
        est.fit(callbacks=ctx.callbacks)
        return est

    def predict(self, est: TemplateFit, ctx: PredictContext) -> np.ndarray:
        error = ctx.split.read("error", ctx.start, ctx.stop) * ctx.noise_level
        return est.predict(ctx.flux, error)

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
    return {**{k: list(getattr(est, k)) for k in LABELS}, "refine_levels": est.refine_levels,
            "physics": est.physics}


def _from_params(p: Mapping[str, Any]) -> TemplateFit:
    """Estimator from preset/saved parameters. A saved model of the first (3-D) version
    has no `am`/`cm` (they were fixed at 0) and a `refine_steps` instead of levels."""
    fixed = [0.0, 0.0, 1.0]
    return TemplateFit(teff=tuple(p["teff"]), logg=tuple(p["logg"]), mh=tuple(p["mh"]),
                       am=tuple(p.get("am", fixed)), cm=tuple(p.get("cm", fixed)),
                       refine_levels=int(p.get("refine_levels", 4)),
                       physics=str(p.get("physics", "me")))


def _require_generated(root: Path) -> str:
    """The physics that built the dataset (`me` or `lte`), or a DataError unless this logg
    can synthesise exactly that data's model: the templates are the generator's spectra,
    and χ² against another model's spectra (a pfsspec/BOSZ set, or data of an older
    generator version) would measure the model mismatch, not log g."""
    from engine.generator.physics import generator_version, physics_of_version
    from engine.io.dataset import MANIFEST, read_manifest

    path = root / MANIFEST
    doc = read_manifest(root)
    if not doc.get("generator"):
        raise DataError("template-fit needs a dataset built by the project's generator "
                        "(dataset.json has no `generator` block)", path=path,
                        key="template-fit",
                        hint="build one with `logg-engine data generate`; the templates are "
                             "that forward model's spectra, so fitting other data (e.g. a "
                             "pfsspec/BOSZ set) would measure model mismatch, not log g")
    version = str(doc.get("generator_version") or "1.0")
    physics = physics_of_version(version)
    if version != generator_version(physics):
        raise DataError(f"the dataset was built by generator {version}; this logg's {physics!r} "
                        f"physics is generator {generator_version(physics)}, so its templates "
                        "would not be the spectra the data came from", path=path,
                        key="generator_version",
                        hint="rebuild the dataset with this logg (`logg-engine data generate "
                             "--preset P --name D" + (" --physics lte" if physics == "lte" else "")
                             + "`), or fit it with the logg version that built it")
    return physics
