"""The Anthropic stand-in's server: scripted faults, recorded requests, the prompt cache
(`usage_for`), and dispatch of `/v1/messages`, `/v1/messages/count_tokens` and the `/_standin/*`
controls on the shared stand-in HTTP server."""

from __future__ import annotations

import argparse
import hashlib
import logging
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from dbr.dev.standins.anthropic import sophie
from dbr.dev.standins.anthropic.batches import BatchesApi
from dbr.dev.standins.anthropic.replies import answer
from dbr.dev.standins.anthropic.wire import (
    CACHE_TTL,
    LOOKBACK_BLOCKS,
    ApiError,
    block_text,
    count_tokens,
    error_body,
    error_text,
    error_type,
    last_user_text,
    min_cacheable_tokens,
    prompt_blocks,
    system_blocks,
    validate_request,
)
from dbr.dev.standins.http import Reply, Request, StandinServer

log = logging.getLogger("dbr.dev.standins.anthropic")


@dataclass
class Fault:
    """A scripted failure for the next `times` message requests."""

    kind: str  # "status" | "delay" | "malformed" | "no_tool"
    status: int = 500
    retry_after: float | None = None
    delay: float = 0.0
    times: int = 1


@dataclass(frozen=True)
class RecordedRequest:
    headers: dict[str, str]
    body: dict[str, Any]
    usage: dict[str, int] | None = None

    @property
    def system_text(self) -> str:
        return "\n".join(b.get("text", "") for b in system_blocks(self.body))

    @property
    def user_text(self) -> str:
        return last_user_text(self.body)


@dataclass
class _State:
    requests: list[RecordedRequest] = field(default_factory=list)
    faults: list[Fault] = field(default_factory=list)
    cache: dict[str, float] = field(default_factory=dict)


class AnthropicStandin(StandinServer):
    """The stand-in server. Thread-safe; use as a context manager or start()/stop()."""

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        api_key: str | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(host=host, port=port)
        self.api_key = api_key
        self.clock = clock
        self._state = _State()
        self._lock = threading.RLock()
        self.batches_api = BatchesApi(self)  # /v1/messages/batches (batches.py)
        self.sophie_ignore_teachings = False  # see sophie.review

    # ------------------------------------------------------------------ lifecycle

    thread_name = "anthropic-standin"

    def respond(self, request: Request) -> Reply:
        try:
            get_ok = request.path in ("/_standin/requests", "/_standin/batches")
            batches = request.path.startswith("/v1/messages/batches")
            if request.method == "GET" and not (get_ok or batches):
                raise ApiError(404, "not_found_error", request.path)
            try:
                body = request.json()
            except ValueError as exc:
                raise ApiError(400, "invalid_request_error", "body is not valid JSON") from exc
            if batches:
                status, out, extra = self.batches_api.handle(
                    request.method, request.path, request.headers, body
                )
            else:
                status, out, extra = self.handle(request.path, request.headers, body)
        except ApiError as exc:
            return Reply(exc.status, error_body(exc), exc.headers)
        extra = dict(extra)
        content_type = extra.pop("Content-Type", "application/json")
        return Reply(status, out, extra, content_type)

    @property
    def base_url(self) -> str:
        """What to pass as the SDK's `base_url`."""
        return self.origin

    # ------------------------------------------------------------------ test controls

    @property
    def requests(self) -> list[RecordedRequest]:
        """Message requests received (not count_tokens or control calls), oldest first."""
        with self._lock:
            return list(self._state.requests)

    def reset(self, *, keep_cache: bool = False) -> None:
        with self._lock:
            cache = self._state.cache if keep_cache else {}
            self._state = _State(cache=cache)
        self.batches_api.reset()

    def clear_cache(self) -> None:
        with self._lock:
            self._state.cache.clear()

    def fail_next(
        self,
        status: int = 500,
        *,
        times: int = 1,
        retry_after: float | None = None,
    ) -> None:
        """The next `times` message requests fail with `status` (429/529/5xx/...)."""
        self._add(Fault("status", status=status, retry_after=retry_after, times=times))

    def delay_next(self, seconds: float, *, times: int = 1) -> None:
        """The next `times` requests answer only after `seconds` (to trip client timeouts)."""
        self._add(Fault("delay", delay=seconds, times=times))

    def malformed_next(self, *, times: int = 1) -> None:
        """The next `times` forced tool calls carry semantically invalid input."""
        self._add(Fault("malformed", times=times))

    def no_tool_next(self, *, times: int = 1) -> None:
        """The next `times` answers are plain text (no tool call), as at max_tokens."""
        self._add(Fault("no_tool", times=times))

    def _add(self, fault: Fault) -> None:
        with self._lock:
            self._state.faults.append(fault)

    def _take_fault(self) -> Fault | None:
        with self._lock:
            if not self._state.faults:
                return None
            fault = self._state.faults[0]
            fault.times -= 1
            if fault.times <= 0:
                self._state.faults.pop(0)
            return fault

    # ------------------------------------------------------------------ usage

    def usage_for(self, body: dict[str, Any]) -> dict[str, int]:
        """Input token split for a request, updating the prompt cache like the real API."""
        blocks = prompt_blocks(body)
        cumulative: list[int] = []
        total = 0
        digests: list[str] = []
        h = hashlib.sha256(str(body.get("model")).encode())
        for block in blocks:
            total += count_tokens(block.text)
            cumulative.append(total)
            h.update(block.text.encode())
            h.update(b"\x00")
            digests.append(h.hexdigest())
        minimum = min_cacheable_tokens(str(body.get("model")))
        marks = [i for i, b in enumerate(blocks) if b.cache_ttl and cumulative[i] >= minimum]
        now = self.clock()
        read_at: int | None = None
        with self._lock:
            cache = self._state.cache
            for mark in reversed(marks):
                for j in range(mark, max(-1, mark - LOOKBACK_BLOCKS - 1), -1):
                    if cache.get(digests[j], 0) > now and cumulative[j] >= minimum:
                        read_at = j
                        break
                if read_at is not None:
                    break
            read = cumulative[read_at] if read_at is not None else 0
            last = marks[-1] if marks else None
            created = cumulative[last] - read if last is not None and last != read_at else 0
            created = max(created, 0)
            for mark in marks:
                cache[digests[mark]] = now + CACHE_TTL[blocks[mark].cache_ttl or "5m"]
            if read_at is not None:
                ttl = max((blocks[m].cache_ttl or "5m" for m in marks), key=CACHE_TTL.get)
                cache[digests[read_at]] = now + CACHE_TTL[ttl]
        return {
            "input_tokens": total - read - created,
            "cache_creation_input_tokens": created,
            "cache_read_input_tokens": read,
        }

    # ------------------------------------------------------------------ dispatch

    def handle(self, path: str, headers: dict[str, str], body: Any) -> tuple[int, Any, dict]:
        if path.startswith("/_standin/"):
            return self._control(path, body)
        if path == "/v1/messages/count_tokens":
            validate_request(headers, {**(body or {}), "max_tokens": 1}, self.api_key)
            total = sum(count_tokens(b.text) for b in prompt_blocks(body))
            return 200, {"input_tokens": total}, {}
        if path != "/v1/messages":
            raise ApiError(404, "not_found_error", f"Not found: {path}")
        validate_request(headers, body, self.api_key)
        if body.get("stream"):
            raise ApiError(400, "invalid_request_error", "the stand-in does not stream")
        fault = self._take_fault()
        if fault is not None and fault.kind == "delay":
            time.sleep(fault.delay)
        if fault is not None and fault.kind == "status":
            with self._lock:
                self._state.requests.append(RecordedRequest(headers, body))
            extra = {} if fault.retry_after is None else {"retry-after": f"{fault.retry_after:g}"}
            raise ApiError(fault.status, error_type(fault.status), error_text(fault.status), extra)
        usage = self.usage_for(body)
        content, stop_reason = answer(
            body, fault.kind if fault else None, preferred=self._sophie_input(body)
        )
        output_text = "".join(block_text(b) for b in content)
        usage_full = {
            **usage,
            "output_tokens": max(1, count_tokens(output_text)),
            "cache_creation": {
                "ephemeral_5m_input_tokens": usage["cache_creation_input_tokens"],
                "ephemeral_1h_input_tokens": 0,
            },
            "service_tier": "standard",
        }
        with self._lock:
            self._state.requests.append(RecordedRequest(headers, body, usage_full))
        message = {
            "id": f"msg_{uuid.uuid4().hex[:24]}",
            "type": "message",
            "role": "assistant",
            "model": body["model"],
            "content": content,
            "stop_reason": stop_reason,
            "stop_sequence": None,
            "usage": usage_full,
        }
        return 200, message, {"request-id": f"req_{uuid.uuid4().hex[:24]}"}

    def _sophie_input(self, body: dict[str, Any]) -> dict[str, Any] | None:
        """Sophie's deterministic review or patterns when the request forces her tool."""
        forced = (body.get("tool_choice") or {}).get("name")
        if forced not in sophie.TOOLS:
            return None
        system_text = "\n".join(b.get("text", "") for b in system_blocks(body))
        return sophie.answer(
            forced, system_text, last_user_text(body), ignore_teachings=self.sophie_ignore_teachings
        )

    def _control(self, path: str, body: Any) -> tuple[int, Any, dict]:
        body = body if isinstance(body, dict) else {}
        if path.startswith("/_standin/batches"):
            return self.batches_api.control(path, body)
        if path == "/_standin/requests":
            return (
                200,
                {"requests": [{"body": r.body, "usage": r.usage} for r in self.requests]},
                {},
            )
        if path == "/_standin/fail":
            kind = body.get("kind", "status")
            fault = Fault(
                kind,
                status=int(body.get("status", 500)),
                retry_after=body.get("retry_after"),
                delay=float(body.get("delay", 0)),
                times=int(body.get("times", 1)),
            )
            self._add(fault)
            return 200, {"ok": True}, {}
        if path == "/_standin/reset":
            self.reset()
            return 200, {"ok": True}, {}
        raise ApiError(404, "not_found_error", f"Not found: {path}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Local stand-in for the Anthropic Messages API.")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--host", default="127.0.0.1")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO)
    log.info("Anthropic stand-in listening on http://%s:%s", args.host, args.port)
    AnthropicStandin(host=args.host, port=args.port).serve_forever()
