"""Job handlers, one module per domain, named by the first part of the job kinds it serves
(`sms` serves sms.send and sms.reconcile, `ai` serves ai.reply and ai.draft,
`exports` serves exports.build and exports.purge). Importing a
module registers its handlers; `load(kinds)` imports the modules serving `kinds` (all of
them without kinds), so a worker for sms.* never pays the AI SDK's import time."""

from __future__ import annotations

import importlib
from collections.abc import Iterable

DOMAINS = ("ai", "exports", "notify", "sms", "sophie", "team")


def load(kinds: Iterable[str] | None = None) -> None:
    """Register the handlers serving `kinds` (every handler when empty)."""
    wanted = {k.split(".", 1)[0] for k in kinds or ()} or set(DOMAINS)
    for domain in DOMAINS:
        if domain in wanted:
            importlib.import_module(f"workers.handlers.{domain}")
