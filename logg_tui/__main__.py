"""`logg-tui [--workspace DIR] [--readonly]`: the terminal results explorer."""

from __future__ import annotations

import argparse
import sys


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="logg-tui", description="Browse logg runs and results, "
                                "draw scaling and R²-vs-SNR curves, launch and follow jobs.")
    p.add_argument("--workspace", "-w", default=None,
                   help="workspace folder (default $LOGG_WORKSPACE, else ./workspace)")
    p.add_argument("--readonly", action="store_true",
                   help="never write the store (no ingest on refresh)")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    from engine.paths import workspace

    from logg_tui.app import LoggApp

    LoggApp(workspace(args.workspace), readonly=args.readonly).run()
    sys.exit(0)


if __name__ == "__main__":
    main()
