"""`python -m engine.cli …` is `logg-engine …` (the study runs its steps this way)."""

from engine.cli import main

main()
