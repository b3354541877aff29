"""Fixtures of the browser tests: the web stack (ingest, tracker, dashboard, pages) and Chromium."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest
from playwright.async_api import Browser

from tests.e2e.pages.stack import WebStack, chromium, web_stack


@pytest.fixture
def stack(
    unique, tmp_path, kafka_bootstrap, redis_url, topic_prefix, redis_prefix
) -> Iterator[WebStack]:
    """The web stack serving a fresh tenant ``acme<unique>``, isolated by topic and key prefixes."""
    with web_stack(
        tenant=f"acme{unique}",
        tmp_path=tmp_path,
        kafka=kafka_bootstrap,
        redis=redis_url,
        topic_prefix=topic_prefix,
        redis_prefix=redis_prefix,
    ) as running:
        yield running


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    """A headless Chromium, closed after the test."""
    async with chromium() as running:
        yield running
