"""The AI tests (replies, drafts, failures, booking through the AI, prompts). The stand-ins and
`ai_settings` are shared fixtures (tests/support/fixtures.py); here every test starts with no
AI job of another module still queued."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _empty_ai_queue(empty_ai_queue: None) -> None:
    """Every AI test runs only the AI jobs it queued itself."""
