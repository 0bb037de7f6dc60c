"""`logg-tui`: the terminal results explorer (see issue: logg-tui)."""

from __future__ import annotations

import sys


def main() -> None:
    print("logg-tui is not built yet; use `logg-engine runs ls` and `logg-engine query`.",
          file=sys.stderr)
    sys.exit(1)


if __name__ == "__main__":
    main()
