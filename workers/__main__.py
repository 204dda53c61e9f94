"""`python -m workers`: run the worker pool in the foreground until SIGTERM/SIGINT.

Options override settings (WORKER_CONCURRENCY, WORKER_POLL_SECONDS,
WORKER_VISIBILITY_SECONDS); `dbr workers` is the same thing with a friendlier banner.
"""

from __future__ import annotations

import argparse
import asyncio

from dbr.settings import get_settings
from workers import configure_logging, serve


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m workers", description=__doc__)
    p.add_argument("--concurrency", type=int, default=None, help="job loops in this process")
    p.add_argument("--batch", type=int, default=5, help="jobs claimed per loop per round")
    p.add_argument("--kinds", default="", help="comma-separated job kinds (default: all)")
    p.add_argument("--grace", type=float, default=20.0, help="seconds to finish on shutdown")
    p.add_argument("--log-level", default="INFO")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    configure_logging(args.log_level)
    asyncio.run(
        serve(
            get_settings(),
            concurrency=args.concurrency,
            kinds=args.kinds.split(","),
            batch_size=args.batch,
            grace_seconds=args.grace,
        )
    )


if __name__ == "__main__":
    main()
