"""The contract between the job queue and the code that does the work.

A handler is an async function registered for a job kind. It receives the claimed job and
a context (database pool, settings, provider clients) and returns an optional JSON result,
stored on the job for callers that wait for it (e.g. an AI draft). It signals failure by
raising: `RetryableError` (transient: retried with backoff until the job's attempts run
out, then dead-lettered) or `PermanentError` (dead-lettered at once). Any other exception
counts as retryable. An attempt is spent when the outcome is recorded; a run whose worker
vanishes (killed, crashed) spends a lease loss instead (see private.settle_lost_leases), so
`job.attempts` is the number of runs that ended before this one, and `job.attempt` this
run's number.

Job kinds in use (payloads are JSON objects):
  sms.send      {"message_id": uuid}                      send one stored outbound message
  sms.reconcile {"message_id": uuid, "attempt": int}      look a stranded send up at Twilio
  ai.reply      {"conversation_id": uuid, "inbound_message_id": uuid}
  ai.draft      {"conversation_id": uuid, "lead_id": uuid, "requested_by": uuid}
  ai.classify_opt_out  {"conversation_id": uuid, "inbound_message_id": uuid}  (manual/off mode)
  exports.build {"export_id": uuid}                       build an export file as its requester
  exports.purge {}                                        delete expired export files
  notify.email  {"delivery_id": uuid}                     a staff notification email (or digest)
  notify.sms    {"delivery_id": uuid}                     a staff notification SMS (member's phone)
  sophie.analyze  {"message_id": uuid} | {"conversation_id": uuid}, "auto"?, "budget_spent"?
  sophie.batch    {"batch_id": uuid}   the 15-minute review through the Message Batches API
  sophie.patterns {"dataset_id": uuid, "min_occurrences": int, "since"?: time}
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from psycopg_pool import AsyncConnectionPool

from dbr.settings import Settings


@dataclass(frozen=True)
class Job:
    id: int
    kind: str
    payload: dict[str, Any]
    attempts: int  # runs that ended (completed or failed) before this one
    max_attempts: int
    client_id: str | None = None
    run_at: datetime | None = None
    lease_losses: int = 0  # runs whose worker vanished before reporting

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> Job:
        return cls(
            id=row["id"],
            kind=row["kind"],
            payload=row["payload"] or {},
            attempts=row["attempts"],
            max_attempts=row["max_attempts"],
            client_id=str(row["client_id"]) if row.get("client_id") else None,
            run_at=row.get("run_at"),
            lease_losses=row.get("lease_losses") or 0,
        )

    @property
    def attempt(self) -> int:
        """This run's attempt number (1 for the first run)."""
        return self.attempts + 1

    @property
    def last_attempt(self) -> bool:
        """A failure of this run dead-letters the job."""
        return self.attempt >= self.max_attempts


@dataclass
class Context:
    pool: AsyncConnectionPool
    settings: Settings
    worker_id: str
    # Provider clients, built once per worker process (see dbr.providers).
    clients: dict[str, Any] = field(default_factory=dict)


class RetryableError(Exception):
    """Transient failure: try again later (optionally after `retry_in` seconds)."""

    def __init__(self, message: str, retry_in: int | None = None) -> None:
        super().__init__(message)
        self.retry_in = retry_in


class PermanentError(Exception):
    """The job can never succeed: dead-letter it now."""


Handler = Callable[[Job, Context], Awaitable[dict[str, Any] | None]]
HANDLERS: dict[str, Handler] = {}


def handler(kind: str) -> Callable[[Handler], Handler]:
    """Register `fn` as the handler for `kind`: `@handler("sms.send")`."""

    def register(fn: Handler) -> Handler:
        if kind in HANDLERS:
            raise ValueError(f"two handlers for job kind {kind!r}")
        HANDLERS[kind] = fn
        return fn

    return register
