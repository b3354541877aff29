"""A ScoreStore on the session Redis, isolated by the per-test key prefix."""

from __future__ import annotations

import pytest
import redis.asyncio as aioredis

from engagement.store.redis_store import ScoreStore
from tests.unit.engagement.model.strategies import RULES


@pytest.fixture
def store(redis_client: aioredis.Redis, redis_prefix: str) -> ScoreStore:
    return ScoreStore(redis_client, prefix=redis_prefix, rules=RULES)
