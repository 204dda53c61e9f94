"""Local stand-in for the Anthropic Messages API: a real HTTP server on 127.0.0.1.

It speaks the wire format the `anthropic` SDK uses for `POST /v1/messages` (headers
`x-api-key` or `Authorization: Bearer`, and `anthropic-version`; the Message response shape;
the error shape `{"type": "error", "error": {"type", "message"}}`) and
`POST /v1/messages/count_tokens`.

What it does like the real API:
- Tools with `strict: true` must use the strict JSON-schema subset (every object has
  `additionalProperties: false` and lists every property in `required`; no numeric or length
  bounds), else 400. `tool_choice: {"type": "tool", "name": ...}` forces that tool: the answer
  is one well-formed `tool_use` block whose input matches the schema.
- Usage counts input tokens with a simple deterministic tokenizer (about 4 characters per
  token) and splits them by the request's `cache_control` breakpoints into
  `cache_read_input_tokens` (longest prefix already cached, looked up at each breakpoint and up
  to 20 blocks before it), `cache_creation_input_tokens` (from there to the last breakpoint)
  and `input_tokens` (after the last breakpoint). Prefix order is tools, system, messages. A
  prefix shorter than the model's minimum (1024 tokens; 2048 for Haiku-class models) is never
  cached. Entries live 5 minutes (1 hour with `"ttl": "1h"`), refreshed on every hit, keyed by
  the model and the exact prefix.

What it answers (deterministic, from the conversation): the text in `<latest_message>` (or the
last user turn) is read with keyword rules: "stop texting me"/"remove my number"/"not interested,
don't text again" -> opt-out (`opt_out_intent`, its own heuristics, not the product's phrase set);
abuse/complaints/"speak to a person" -> handover; "not interested" -> NOT_INTERESTED; interest
with `<available_slots>` listed -> offer slots; acceptance or a named time after slots were
offered (`offered_before="true"`) -> book that slot; else a friendly follow-up question.
Lesson ids found in `<lesson id="...">` are reported as applied. The forced tool
`classify_opt_out` gets {opt_out, confidence, reason} from `opt_out_intent`. Any other forced
tool gets a schema-valid input built from its schema.

The package: `wire` (request validation, error envelopes), `replies` (the deterministic
reply logic), `server` (state, faults, the prompt cache, dispatch on the shared stand-in HTTP
server), `batches` (the Message Batches API: create, retrieve, results as JSONL, cancel,
per-request errors and expiry) and `sophie` (deterministic reviews and patterns for the forced
tools `record_review` and `record_patterns`).

Tests start it in-process (`AnthropicStandin().start()`), script failures with `fail_next(...)`
(HTTP status with optional retry-after, a delay longer than the client's timeout, malformed
tool input, or no tool call at all) and read `requests`. `dbr up` runs it as
`python -m dbr.dev.standins.anthropic --port 54341`; `/_standin/*` exposes the controls over HTTP.
"""

from dbr.dev.standins.anthropic.replies import decide_reply, opt_out_intent
from dbr.dev.standins.anthropic.server import AnthropicStandin, Fault, RecordedRequest
from dbr.dev.standins.anthropic.wire import ApiError, count_tokens, validate_request

__all__ = [
    "AnthropicStandin",
    "ApiError",
    "Fault",
    "RecordedRequest",
    "count_tokens",
    "decide_reply",
    "opt_out_intent",
    "validate_request",
]
