"""`python -m engine.runs.ray.worker RUN_DIR`: the worker of a run executed on a Ray node.

The same lifecycle as `engine.runs.worker` (engine.runs.runner.execute) with one difference:
it does not ingest. Under Ray the folder may live on a node that cannot see the store, and
the store must stay single-writer, so the driver ingests when the folder is back.

Exit status: 0 finished, 1 failed, 3 cancelled (as engine.runs.worker)."""

from __future__ import annotations

import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1 or not (Path(args[0]) / "run.json").is_file():
        print("usage: python -m engine.runs.ray.worker RUN_DIR (a folder with run.json)",
              file=sys.stderr)
        return 2
    from engine.runs.runner import execute
    from engine.runs.worker import EXIT

    return EXIT.get(execute(Path(args[0]), ingest=False), 1)


if __name__ == "__main__":
    sys.exit(main())
