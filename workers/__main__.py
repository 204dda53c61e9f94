"""`python -m workers`: run the worker pool in the foreground until SIGTERM/SIGINT.

Options override settings (WORKER_CONCURRENCY, WORKER_POLL_SECONDS,
WORKER_VISIBILITY_SECONDS); `dbr workers` is the same thing with a friendlier banner.
"""

from __future__ import annotations

import argparse
import asyncio
import logging

from dbr.settings import get_settings


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m workers", description=__doc__)
    p.add_argument("--concurrency", type=int, default=None, help="job loops in this process")
    p.add_argument("--batch", type=int, default=5, help="jobs claimed per loop per round")
    p.add_argument("--kinds", default="", help="comma-separated job kinds (default: all)")
    p.add_argument("--grace", type=float, default=20.0, help="seconds to finish on shutdown")
    p.add_argument("--log-level", default="INFO")
    return p.parse_args(argv)


async def serve(args: argparse.Namespace) -> None:
    from workers import handlers
    from workers.runtime import WorkerPool

    kinds = [k for k in args.kinds.split(",") if k] or None
    handlers.load(kinds)  # only the modules serving these kinds (every one without --kinds)
    pool = WorkerPool(
        get_settings(),
        kinds=kinds,
        concurrency=args.concurrency,
        batch_size=args.batch,
        grace_seconds=args.grace,
    )
    pool.install_signal_handlers()
    await pool.run()


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    logging.getLogger("twilio").setLevel(logging.WARNING)
    asyncio.run(serve(args))


if __name__ == "__main__":
    main()
