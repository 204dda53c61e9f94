"""The Anthropic Messages API's wire format as the stand-in checks it: headers, the request
body (strict tool schemas, `cache_control` breakpoints), the prompt's blocks in cache-prefix
order, the stand-in's tokenizer, and the error envelope `{"type": "error", "error": {"type",
"message"}}` with the status-to-type table of the real API."""

from __future__ import annotations

import json
import math
import uuid
from dataclasses import dataclass
from typing import Any

CHARS_PER_TOKEN = 4
CACHE_TTL = {"5m": 300.0, "1h": 3600.0}
LOOKBACK_BLOCKS = 20
MAX_BREAKPOINTS = 4
_UNSUPPORTED_STRICT = {
    "minimum",
    "maximum",
    "exclusiveMinimum",
    "exclusiveMaximum",
    "multipleOf",
    "minLength",
    "maxLength",
    "maxItems",
    "uniqueItems",
    "minProperties",
    "maxProperties",
    "$ref",
    "oneOf",
    "allOf",
    "not",
}


def count_tokens(text: str) -> int:
    """The stand-in's tokenizer: one token per 4 characters, rounded up (0 for '')."""
    return math.ceil(len(text) / CHARS_PER_TOKEN)


def min_cacheable_tokens(model: str) -> int:
    """Shortest cacheable prefix: 2048 tokens for Haiku-class models, 1024 otherwise."""
    return 2048 if "haiku" in model.lower() else 1024


class ApiError(Exception):
    def __init__(
        self, status: int, type_: str, message: str, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.type = type_
        self.message = message
        self.headers = headers or {}


def error_type(status: int) -> str:
    return {
        400: "invalid_request_error",
        401: "authentication_error",
        403: "permission_error",
        404: "not_found_error",
        413: "request_too_large",
        429: "rate_limit_error",
        529: "overloaded_error",
    }.get(status, "api_error")


def error_text(status: int) -> str:
    return {
        429: "Number of request tokens has exceeded your per-minute rate limit",
        529: "Overloaded",
    }.get(status, "Internal server error")


def error_body(exc: ApiError) -> dict[str, Any]:
    """The error envelope the API answers with."""
    return {
        "type": "error",
        "error": {"type": exc.type, "message": exc.message},
        "request_id": f"req_{uuid.uuid4().hex[:24]}",
    }


# ---------------------------------------------------------------------- request anatomy


def system_blocks(body: dict[str, Any]) -> list[dict[str, Any]]:
    system = body.get("system")
    if system is None:
        return []
    if isinstance(system, str):
        return [{"type": "text", "text": system}]
    return list(system)


def message_blocks(message: dict[str, Any]) -> list[dict[str, Any]]:
    content = message.get("content")
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    return list(content or [])


def block_text(block: dict[str, Any]) -> str:
    if block.get("type") == "text":
        return str(block.get("text", ""))
    rest = {k: v for k, v in block.items() if k != "cache_control"}
    return json.dumps(rest, sort_keys=True, separators=(",", ":"))


def last_user_text(body: dict[str, Any]) -> str:
    for message in reversed(body.get("messages") or []):
        if message.get("role") == "user":
            return "\n".join(
                b.get("text", "") for b in message_blocks(message) if b.get("type") == "text"
            )
    return ""


@dataclass(frozen=True)
class _Block:
    text: str  # what is tokenised and hashed
    cache_ttl: str | None  # "5m"/"1h" when this block carries a cache_control breakpoint


def prompt_blocks(body: dict[str, Any]) -> list[_Block]:
    """The request in cache-prefix order (tools, system, messages), one entry per block."""
    out: list[_Block] = []

    def ttl(block: dict[str, Any]) -> str | None:
        cc = block.get("cache_control")
        if not cc:
            return None
        if cc.get("type") != "ephemeral":
            raise ApiError(400, "invalid_request_error", "cache_control.type must be 'ephemeral'")
        value = cc.get("ttl", "5m")
        if value not in CACHE_TTL:
            raise ApiError(400, "invalid_request_error", "cache_control.ttl must be '5m' or '1h'")
        return value

    for tool in body.get("tools") or []:
        out.append(_Block(block_text(tool), ttl(tool)))
    for block in system_blocks(body):
        out.append(_Block(block_text(block), ttl(block)))
    for message in body.get("messages") or []:
        for block in message_blocks(message):
            out.append(_Block(message.get("role", "") + ":" + block_text(block), ttl(block)))
    return out


# ---------------------------------------------------------------------- validation


def _check_strict_schema(schema: Any, where: str) -> None:
    if not isinstance(schema, dict):
        return
    bad = _UNSUPPORTED_STRICT.intersection(schema)
    if bad:
        raise ApiError(
            400,
            "invalid_request_error",
            f"{where}: {sorted(bad)[0]} is not supported in strict mode",
        )
    types = schema.get("type")
    is_object = types == "object" or (isinstance(types, list) and "object" in types)
    if is_object:
        props = schema.get("properties") or {}
        if schema.get("additionalProperties") is not False:
            raise ApiError(
                400,
                "invalid_request_error",
                f"{where}: additionalProperties must be false for strict tools",
            )
        missing = set(props) - set(schema.get("required") or [])
        if missing:
            raise ApiError(
                400,
                "invalid_request_error",
                f"{where}: every property must be required in strict mode ({sorted(missing)[0]})",
            )
        for name, sub in props.items():
            _check_strict_schema(sub, f"{where}.{name}")
    if "items" in schema:
        _check_strict_schema(schema["items"], f"{where}[]")
    for i, sub in enumerate(schema.get("anyOf") or []):
        _check_strict_schema(sub, f"{where}.anyOf[{i}]")


def validate_request(headers: dict[str, str], body: Any, api_key: str | None) -> None:
    # The SDK sends the key as x-api-key (or, in recent versions, as a bearer token).
    bearer = headers.get("authorization", "")
    key = headers.get("x-api-key") or (bearer[7:] if bearer.lower().startswith("bearer ") else "")
    if not key or (api_key and key != api_key):
        raise ApiError(401, "authentication_error", "invalid x-api-key")
    if not headers.get("anthropic-version"):
        raise ApiError(400, "invalid_request_error", "anthropic-version: header is required")
    if not isinstance(body, dict):
        raise ApiError(400, "invalid_request_error", "body must be a JSON object")
    for name in ("model", "messages"):
        if not body.get(name):
            raise ApiError(400, "invalid_request_error", f"{name}: Field required")
    if not isinstance(body.get("max_tokens"), int) or body["max_tokens"] < 1:
        raise ApiError(400, "invalid_request_error", "max_tokens: must be a positive integer")
    for i, message in enumerate(body["messages"]):
        if message.get("role") not in ("user", "assistant"):
            raise ApiError(400, "invalid_request_error", f"messages.{i}.role: invalid role")
    if body["messages"][0].get("role") != "user":
        raise ApiError(400, "invalid_request_error", "messages: first message must use user role")
    tools = body.get("tools") or []
    for i, tool in enumerate(tools):
        if not tool.get("name") or not isinstance(tool.get("input_schema"), dict):
            raise ApiError(400, "invalid_request_error", f"tools.{i}: name and input_schema needed")
        if tool.get("strict"):
            _check_strict_schema(tool["input_schema"], f"tools.{i}.input_schema")
    choice = body.get("tool_choice")
    if (
        choice
        and choice.get("type") == "tool"
        and choice.get("name") not in {t.get("name") for t in tools}
    ):
        raise ApiError(400, "invalid_request_error", "tool_choice: unknown tool name")
    marks = sum(1 for b in prompt_blocks(body) if b.cache_ttl)
    if marks > MAX_BREAKPOINTS:
        raise ApiError(
            400,
            "invalid_request_error",
            f"A maximum of {MAX_BREAKPOINTS} blocks with cache_control may be provided. "
            f"Found {marks}.",
        )
