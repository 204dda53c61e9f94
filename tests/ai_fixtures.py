"""Fixtures for the AI tests: the Anthropic stand-in (one per session, reset per test), a
Cal.com stand-in per test, and settings pointing the providers at them. Load with
`pytest_plugins = ("tests.ai_fixtures",)`."""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest

from dbr.dev.standins.anthropic import AnthropicStandin
from dbr.dev.standins.calcom import CalcomStandin
from dbr.settings import Settings
from tests.ai_support import MODEL


@pytest.fixture
def claude() -> Iterator[AnthropicStandin]:
    """A fresh Anthropic stand-in per test: no requests, faults or cache entries from other
    tests, and no late request (an SDK retry after an injected timeout) landing in this one."""
    with AnthropicStandin() as fake:
        yield fake


@pytest.fixture
def cal() -> Iterator[CalcomStandin]:
    with CalcomStandin() as fake:
        yield fake


@pytest.fixture
def ai_settings(settings: Settings, claude: AnthropicStandin, cal: CalcomStandin) -> Settings:
    return settings.model_copy(
        update={
            "anthropic_api_key": None,
            "anthropic_base_url": claude.base_url,
            "anthropic_model": MODEL,
            "calcom_api_key": None,
            "calcom_base_url": cal.base_url,
        }
    )


@pytest.fixture(autouse=True)
def _empty_ai_queue(db_url: str) -> None:
    """Each AI test runs only the AI jobs it queued itself: `run_jobs` claims every queued AI
    job, so leftovers from other test modules sharing the session database are canceled."""
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute(
            "update private.jobs set status = 'canceled', finished_at = now()"
            " where status in ('queued', 'running') and kind like 'ai.%'"
        )
