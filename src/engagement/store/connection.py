"""Connections to Redis: the one place a service's Redis client is checked."""

from __future__ import annotations

import redis.asyncio as aioredis


async def answers(redis: aioredis.Redis) -> bool:
    """True when Redis answers a PING (the workers' readiness probe)."""
    try:
        return bool(await redis.ping())
    except Exception:
        return False
