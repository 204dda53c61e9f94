"""The Message Batches API of the Anthropic stand-in, in the wire format the SDK uses.

    POST /v1/messages/batches               {"requests": [{"custom_id", "params"}]} -> batch
    GET  /v1/messages/batches/{id}            -> MessageBatch
    GET  /v1/messages/batches/{id}/results    -> JSONL, one {"custom_id", "result"} per request
    POST /v1/messages/batches/{id}/cancel     -> MessageBatch (canceling, then ended)

Each request is validated and answered like `POST /v1/messages` (same deterministic model,
same prompt cache and usage) when the batch is created; the batch reports
`processing_status: in_progress` for its first `polls_before_end` retrievals, then `ended`
with `results_url` set (a real batch takes minutes to hours; tests need neither). A request
that fails validation, or one picked with `error_next(...)`, ends `errored` with the API's
error body; `expire_next()` ends a whole batch `expired` (every request that had not
succeeded). Results come back in a shuffled, deterministic order, as the real API does not
keep request order. `batches` records what was created, for tests and benches; over HTTP,
`/_standin/batches` lists them and `/_standin/batches/script` scripts the next ones.
"""

from __future__ import annotations

import json
import re
import threading
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from dbr.dev.standins.anthropic.wire import ApiError

if TYPE_CHECKING:
    from dbr.dev.standins.anthropic.server import AnthropicStandin

MAX_REQUESTS = 100_000
_CUSTOM_ID = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")


@dataclass
class Batch:
    id: str
    created_at: datetime
    requests: list[dict[str, Any]]
    results: list[dict[str, Any]] = field(default_factory=list)
    polls_left: int = 1
    expire: bool = False
    canceled: bool = False
    retrieved: int = 0  # GET /v1/messages/batches/{id} calls

    @property
    def ended(self) -> bool:
        return self.polls_left <= 0 or self.canceled


@dataclass
class BatchesState:
    batches: dict[str, Batch] = field(default_factory=dict)
    polls_before_end: int = 1
    error_ids: set[str] = field(default_factory=set)
    error_count: int = 0
    expire_next: bool = False


class BatchesApi:
    """Batch state and endpoints; one per stand-in (`standin.batches_api`)."""

    def __init__(self, owner: AnthropicStandin) -> None:
        self.owner = owner
        self.state = BatchesState()
        self._lock = threading.RLock()

    # ------------------------------------------------------------------ test controls

    @property
    def batches(self) -> list[Batch]:
        with self._lock:
            return list(self.state.batches.values())

    def reset(self) -> None:
        with self._lock:
            self.state = BatchesState()

    def set_polls_before_end(self, n: int) -> None:
        """A batch reports in_progress for its first `n` retrievals (default 1)."""
        with self._lock:
            self.state.polls_before_end = n

    def error_next(self, *, custom_ids: list[str] | None = None, count: int = 0) -> None:
        """Requests with these custom ids, or the next `count` requests, end `errored`."""
        with self._lock:
            self.state.error_ids.update(custom_ids or [])
            self.state.error_count += count

    def expire_next(self) -> None:
        """The next batch created ends `expired` for every request."""
        with self._lock:
            self.state.expire_next = True

    def control(self, path: str, body: dict[str, Any]) -> tuple[int, Any, dict]:
        """`/_standin/batches` (list) and `/_standin/batches/script` ({polls_before_end?,
        error_count?, error_custom_ids?, expire_next?}) for the local stack."""
        if path == "/_standin/batches/script":
            if "polls_before_end" in body:
                self.set_polls_before_end(int(body["polls_before_end"]))
            self.error_next(
                custom_ids=list(body.get("error_custom_ids") or []),
                count=int(body.get("error_count") or 0),
            )
            if body.get("expire_next"):
                self.expire_next()
            return 200, {"ok": True}, {}
        return (
            200,
            {"batches": [{**self._shape(b), "requests": len(b.requests)} for b in self.batches]},
            {},
        )

    # ------------------------------------------------------------------ endpoints

    def handle(self, method: str, path: str, headers: dict[str, str], body: Any) -> tuple:
        self._auth(headers)
        parts = path.rstrip("/").split("/")[4:]  # after /v1/messages/batches
        if method == "POST" and not parts:
            return 200, self._create(headers, body), {}
        if not parts:
            raise ApiError(405, "invalid_request_error", "use POST to create a batch")
        batch = self._get(parts[0])
        if method == "GET" and len(parts) == 1:
            with self._lock:
                batch.retrieved += 1
                shape = self._shape(batch)
                batch.polls_left -= 1
            return 200, shape, {}
        if method == "GET" and parts[1:] == ["results"]:
            if not batch.ended:
                raise ApiError(
                    400, "invalid_request_error", f"Batch {batch.id} is still in_progress"
                )
            lines = "".join(json.dumps(r) + "\n" for r in self._results(batch))
            return 200, lines.encode(), {"Content-Type": "application/binary"}
        if method == "POST" and parts[1:] == ["cancel"]:
            with self._lock:
                batch.canceled = True
            return 200, self._shape(batch), {}
        raise ApiError(404, "not_found_error", f"Not found: {path}")

    def _auth(self, headers: dict[str, str]) -> None:
        bearer = headers.get("authorization", "")
        key = headers.get("x-api-key") or (
            bearer[7:] if bearer.lower().startswith("bearer ") else ""
        )
        if not key or (self.owner.api_key and key != self.owner.api_key):
            raise ApiError(401, "authentication_error", "invalid x-api-key")
        if not headers.get("anthropic-version"):
            raise ApiError(400, "invalid_request_error", "anthropic-version: header is required")

    def _get(self, batch_id: str) -> Batch:
        with self._lock:
            batch = self.state.batches.get(batch_id)
        if batch is None:
            raise ApiError(404, "not_found_error", f"No batch {batch_id}")
        return batch

    def _create(self, headers: dict[str, str], body: Any) -> dict[str, Any]:
        requests = (body or {}).get("requests")
        if not isinstance(requests, list) or not requests:
            raise ApiError(400, "invalid_request_error", "requests: must be a non-empty list")
        if len(requests) > MAX_REQUESTS:
            raise ApiError(400, "invalid_request_error", f"requests: at most {MAX_REQUESTS}")
        seen: set[str] = set()
        for i, r in enumerate(requests):
            cid = r.get("custom_id") if isinstance(r, dict) else None
            if not isinstance(cid, str) or not _CUSTOM_ID.match(cid):
                raise ApiError(
                    400,
                    "invalid_request_error",
                    f"requests.{i}.custom_id: must match {_CUSTOM_ID.pattern}",
                )
            if cid in seen:
                raise ApiError(
                    400, "invalid_request_error", f"requests.{i}.custom_id: duplicate {cid}"
                )
            seen.add(cid)
            if not isinstance(r.get("params"), dict):
                raise ApiError(400, "invalid_request_error", f"requests.{i}.params: required")
        with self._lock:
            expire = self.state.expire_next
            self.state.expire_next = False
            polls = self.state.polls_before_end
        batch = Batch(
            id=f"msgbatch_{uuid.uuid4().hex[:24]}",
            created_at=datetime.now(UTC),
            requests=requests,
            polls_left=polls,
            expire=expire,
        )
        for r in requests:
            batch.results.append(self._run_one(headers, r))
        with self._lock:
            self.state.batches[batch.id] = batch
        return self._shape(batch)

    def _run_one(self, headers: dict[str, str], request: dict[str, Any]) -> dict[str, Any]:
        cid = request["custom_id"]
        with self._lock:
            forced_error = cid in self.state.error_ids or self.state.error_count > 0
            if cid in self.state.error_ids:
                self.state.error_ids.discard(cid)
            elif self.state.error_count > 0:
                self.state.error_count -= 1
        if forced_error:
            return _errored(cid, "api_error", "Internal server error")
        params = dict(request["params"])
        if params.get("stream"):
            return _errored(cid, "invalid_request_error", "stream is not allowed in batches")
        try:
            status, message, _headers = self.owner.handle(
                "/v1/messages", {**headers, "x-standin-batch": "1"}, params
            )
        except ApiError as exc:
            return _errored(cid, exc.type, exc.message)
        assert status == 200
        message["usage"]["service_tier"] = "batch"
        return {"custom_id": cid, "result": {"type": "succeeded", "message": message}}

    def _results(self, batch: Batch) -> list[dict[str, Any]]:
        out = []
        for r in batch.results:
            kind = r["result"]["type"]
            if batch.expire and kind == "succeeded":
                r = {"custom_id": r["custom_id"], "result": {"type": "expired"}}
            elif batch.canceled and batch.polls_left > 0 and kind == "succeeded":
                r = {"custom_id": r["custom_id"], "result": {"type": "canceled"}}
            out.append(r)
        # The API does not keep request order: a fixed shuffle (by custom id) shows it.
        return sorted(out, key=lambda r: uuid.uuid5(uuid.NAMESPACE_OID, r["custom_id"]).hex)

    def _shape(self, batch: Batch) -> dict[str, Any]:
        counts = {"processing": 0, "succeeded": 0, "errored": 0, "canceled": 0, "expired": 0}
        ended = batch.ended
        if ended:
            for r in self._results(batch):
                counts[r["result"]["type"]] += 1
        else:
            counts["processing"] = len(batch.requests)
        origin = self.owner.base_url
        return {
            "id": batch.id,
            "type": "message_batch",
            "processing_status": "ended" if ended else "in_progress",
            "request_counts": counts,
            "created_at": _iso(batch.created_at),
            "expires_at": _iso(batch.created_at + timedelta(hours=24)),
            "ended_at": _iso(datetime.now(UTC)) if ended else None,
            "cancel_initiated_at": _iso(datetime.now(UTC)) if batch.canceled else None,
            "archived_at": None,
            "results_url": f"{origin}/v1/messages/batches/{batch.id}/results" if ended else None,
        }


def _errored(custom_id: str, type_: str, message: str) -> dict[str, Any]:
    return {
        "custom_id": custom_id,
        "result": {
            "type": "errored",
            "error": {"type": "error", "error": {"type": type_, "message": message}},
        },
    }


def _iso(at: datetime) -> str:
    return at.isoformat().replace("+00:00", "Z")
