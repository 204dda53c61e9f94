"""Anthropic client factory: the real API with ANTHROPIC_API_KEY, otherwise the local stand-in.

    client = anthropic_client(settings)            # AsyncAnthropic
    message = await client.messages.create(...)

The SDK retries connection errors, timeouts, 408/409/429 and 5xx (incl. 529 overloaded) with
exponential backoff and jitter, honouring `retry-after`; `max_retries` bounds that per call,
and the job queue adds its own retries (with backoff) on top.
"""

from __future__ import annotations

from typing import Any

from anthropic import AsyncAnthropic

from dbr.settings import Settings

STANDIN_API_KEY = "sk-ant-local-standin"
DEFAULT_TIMEOUT_SECONDS = 30.0
DEFAULT_MAX_RETRIES = 3


def standin_base_url(port: int) -> str:
    return f"http://127.0.0.1:{port}"


def is_standin(settings: Settings) -> bool:
    return not settings.anthropic_api_key


def anthropic_client(settings: Settings, **kw: Any) -> AsyncAnthropic:
    """The client for these settings; `kw` overrides SDK options (timeout, max_retries...)."""
    kw.setdefault("timeout", DEFAULT_TIMEOUT_SECONDS)
    kw.setdefault("max_retries", DEFAULT_MAX_RETRIES)
    if settings.anthropic_api_key:
        if settings.anthropic_base_url:
            kw.setdefault("base_url", settings.anthropic_base_url)
        return AsyncAnthropic(api_key=settings.anthropic_api_key, **kw)
    return AsyncAnthropic(
        api_key=STANDIN_API_KEY,
        base_url=settings.anthropic_base_url or standin_base_url(settings.anthropic_standin_port),
        **kw,
    )
