"""``GET /dashboard/history`` over HTTP (real Redis): each day's sample, today's counts now, and
the read samples today when no sweep did yet."""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

import httpx
import redis.asyncio as aioredis

from engagement.store import tier_history
from engagement.store.redis_keys import KeyLayout
from tests.integration.ingest.conftest import READ_KEY
from tests.integration.ingest.test_job_api import seed

BEARER = {"Authorization": f"Bearer {READ_KEY}"}


async def test_the_history_holds_each_days_sample_and_todays_counts_now(
    settings: Any,
    client: httpx.AsyncClient,
    redis_client: aioredis.Redis,
    redis_prefix: str,
    tenant: str,
) -> None:
    # given a tenant with one warm and two cold candidates, and a sample of two days ago
    await seed(settings, redis_client, redis_prefix, tenant)
    layout = KeyLayout(redis_prefix)
    key = tier_history.history_key(layout, tenant)
    today = tier_history.utc_day(time.time())
    earlier = today - timedelta(days=2)
    sampled_at = time.time() - 2 * 86400
    await tier_history.record(redis_client, key, earlier, sampled_at, {"cold": 7, "warm": 1})
    # when the dashboard reads the last three days
    answer = await client.get("/dashboard/history", params={"days": 3}, headers=BEARER)
    # then the day before yesterday has its sample, yesterday none, today the counts now
    assert answer.status_code == 200, answer.text
    body = answer.json()
    tiers = (await client.get("/v1/tiers", headers=BEARER)).json()["tiers"]
    assert body["tiers"] == ["cold", "warm", "hot"]
    assert [(d["date"], d["counts"]) for d in body["days"]] == [
        (earlier.isoformat(), {"cold": 7, "warm": 1}),
        ((today - timedelta(days=1)).isoformat(), None),
        (today.isoformat(), tiers),
    ]
    assert body["days"][0]["at"].startswith(earlier.isoformat())
    assert body["days"][1]["at"] is None
    # and the read sampled today, as the sweep would have
    [stored] = await tier_history.days(redis_client, layout, tenant, today, 1)
    assert stored.counts == tiers


async def test_the_history_shows_thirty_days_unless_asked(
    client: httpx.AsyncClient,
) -> None:
    body = (await client.get("/dashboard/history", headers=BEARER)).json()
    assert len(body["days"]) == 30
