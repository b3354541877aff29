"""Expiry of idle anonymous candidates (data minimisation, and the store's memory bounded).

Invariant: an anonymous candidate (``anon:<anonymousId>``, not merged into an identified one)
whose latest event is older than the retention is erased as a ``DELETE`` would erase it: its keys,
its ranks and its record on the latest topic; an identified candidate never is, and an anonymous
one that had an event meanwhile is kept.

How: the store indexes anonymous candidates by latest event time (``ScoreStore.idle_anonymous``).
One scorer at a time (a Redis lock) finds those idle past the retention and writes an erasure
request for each to the interactions topic, keyed like its events, carrying ``idleBefore``: the
scorer erases the candidate when it reaches the request in its partition, behind every event
before it, and only if the candidate is still idle then (``BatchHandler._erase``). Nothing is
fenced: an event after the request starts a new profile, one before it keeps the candidate.

The same look takes out of each tenant's job list the jobs no event named for the retention and
no candidate is left in (``ScoreStore.prune_jobs``): the list would grow with every job id sent.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime

from engagement.kafka.erasure_records import erasure_request
from engagement.kafka.score_records import SOURCE, OutRecord
from engagement.store.redis_store import ScoreStore

log = logging.getLogger("engagement.scorer")

PAGE = 500  # candidates per tenant and round: a request each


async def expire_idle(
    store: ScoreStore,
    send_acked: Callable[[Sequence[OutRecord]], Awaitable[object]],
    *,
    interactions_topic: str,
    retention_seconds: float,
    now: datetime,
) -> int:
    """Request the erasure of every anonymous candidate idle past the retention (under the
    store's expiry lock: one scorer at a time); how many were requested."""
    lock = store.keys.expiry_lock
    token = uuid.uuid4().hex
    if not await store.redis.set(lock, token, nx=True, px=600_000):
        return 0
    try:
        before = now.timestamp() - retention_seconds
        requested = pruned = 0
        for tenant in await store.tenants():
            while ids := await store.idle_anonymous(tenant, before=before, limit=PAGE):
                idle_before = datetime.fromtimestamp(before, now.tzinfo)
                requests = [
                    erasure_request(
                        tenant,
                        c,
                        sequence=1,
                        now=now,
                        interactions_topic=interactions_topic,
                        source=SOURCE,
                        idle_before=idle_before,
                    )
                    for c in ids
                ]
                await send_acked(requests)
                await store.forget_idle(tenant, ids, before=before)
                requested += len(ids)
            pruned += len(await store.prune_jobs(tenant, before=before))
        if requested or pruned:
            fields = {
                "event": "scorer.expiry",
                "requested": requested,
                "jobs_pruned": pruned,
                "before": before,
            }
            log.info("expiry of idle anonymous candidates requested: %s", fields, extra=fields)
        return requested
    finally:
        if await store.redis.get(lock) == token.encode():
            await store.redis.delete(lock)
