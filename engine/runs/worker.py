"""`python -m engine.runs.worker RUN_DIR`: the subprocess that executes one run.

Exit status: 0 finished, 1 failed, 3 cancelled (the run folder holds the details)."""

from __future__ import annotations

import sys
from pathlib import Path

EXIT = {"finished": 0, "failed": 1, "cancelled": 3}


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1 or not (Path(args[0]) / "run.json").is_file():
        print("usage: python -m engine.runs.worker RUN_DIR (a folder with run.json)",
              file=sys.stderr)
        return 2
    from engine.runs.runner import execute

    return EXIT.get(execute(Path(args[0])), 1)


if __name__ == "__main__":
    sys.exit(main())
