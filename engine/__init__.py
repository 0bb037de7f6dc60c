"""logg engine: datasets, models, evaluation and the results store.

Import boundary: nothing here imports torch or lightgbm at module scope outside
`engine.generator`, `engine.models.vit` and `engine.models.lgbm`; the CLI loads them lazily.
"""

__version__ = "0.1.0"
