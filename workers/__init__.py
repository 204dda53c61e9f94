"""The job workers: the pool (`runtime`), the handler contract (`jobs`), wake-up signals
(`wakeup`) and one thin handler module per domain (`handlers`). `serve` runs a pool until
SIGTERM/SIGINT; `python -m workers` and `dbr workers` both call it."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from dbr.settings import Settings


def configure_logging(level: str = "INFO") -> None:
    logging.basicConfig(
        level=level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    logging.getLogger("twilio").setLevel(logging.WARNING)


async def serve(
    settings: Settings,
    *,
    concurrency: int | None = None,
    kinds: Sequence[str] | None = None,
    batch_size: int = 5,
    grace_seconds: float = 20.0,
) -> None:
    """Run the worker pool for `kinds` (every registered kind when empty) until SIGTERM or
    SIGINT, then let running jobs finish for up to `grace_seconds`. Only the handler modules
    serving `kinds` are imported."""
    from workers import handlers
    from workers.runtime import WorkerPool

    wanted = [k for k in kinds or () if k] or None
    handlers.load(wanted)
    pool = WorkerPool(
        settings,
        kinds=wanted,
        concurrency=concurrency,
        batch_size=batch_size,
        grace_seconds=grace_seconds,
    )
    pool.install_signal_handlers()
    await pool.run()
