"""GDPR erasure in the score store, and the pending-erasure entry that lets a retry complete it.

``DELETE /v1/candidates/{id}`` wipes the candidate's keys in Redis (``erase``), then publishes
tombstones and an erasure record to Kafka. If Kafka does not acknowledge them, the client retries —
and by then Redis no longer says which ids were merged into the candidate nor its last sequence.
So before any key is deleted the erasure records both in ``P{T:C}:e``
(``KeyLayout.pending_erasure``; the ids to tombstone and the sequence, nothing else), which
expires after ``PENDING_ERASURE_SECONDS`` and is deleted once Kafka acknowledged every record
(``forget``). A retry reads it back and publishes the same records.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from functools import cache

import orjson
from redis.commands.core import AsyncScript

from engagement.model.score_views import Erasure
from engagement.store import erasure_fence
from engagement.store.connection import RedisClient
from engagement.store.merge_store import MAX_HOPS
from engagement.store.redis_keys import KeyLayout
from engagement.store.store_scripts import lua_source, text

PENDING_ERASURE_SECONDS = 7 * 86400  # how long a retry of a failed erasure can still complete it


async def erase(
    redis: RedisClient,
    keys: KeyLayout,
    tenant_id: str,
    candidate_id: str,
    *,
    wipe: AsyncScript,
    rank: AsyncScript,
    rank_keys: list[str],
    fence_at: datetime | None = None,
) -> Erasure:
    """Remove every key of the candidate and of ids merged into it (transitively), and their
    ranks (``wipe``: the store's erase script, ``rank``: its rank script on ``rank_keys``);
    ``fence_at``: fence each merged id as of then (``erasure_fence``) before its keys go.

    Idempotent, and complete when repeated after a failure at any point: the merged ids and the
    last sequence are recorded first (``record``), and the entry outlives the keys.
    """
    owners = await _owners(redis, keys, tenant_id, candidate_id)
    found = await _merged_into(redis, keys, tenant_id, candidate_id)
    found |= await _identified_through(redis, keys, tenant_id, candidate_id, owners)
    last_sequence, merged = await record(redis, keys, tenant_id, candidate_id, found)
    if fence_at is not None:
        await erasure_fence.raise_fences(redis, keys, tenant_id, merged, fence_at)
    todo, removed = [candidate_id, *merged], 0
    while todo:
        candidate = keys.candidate(tenant_id, todo.pop())
        _seq, count, nested = await wipe(keys=list(candidate.all), args=[])
        removed += int(count)
        late = {text(m) for m in nested} - {candidate_id, *merged}
        if late:  # merged in after ``record`` looked (a concurrent identify or alias)
            last_sequence, merged = await record(redis, keys, tenant_id, candidate_id, late)
            if fence_at is not None:
                await erasure_fence.raise_fences(redis, keys, tenant_id, late, fence_at)
            todo.extend(late)
    await _detach(redis, keys, tenant_id, owners, [candidate_id, *merged])
    for cand in (candidate_id, *merged):
        await rank(keys=rank_keys, args=[cand, 0, -1, "0"])
    return Erasure(tenant_id, candidate_id, removed > 0, removed, last_sequence, merged)


async def record(
    redis: RedisClient,
    keys: KeyLayout,
    tenant_id: str,
    candidate_id: str,
    found: Iterable[str],
) -> tuple[int, tuple[str, ...]]:
    """Add ids erased with the candidate (``found``: those its merges reach, directly or not, and
    those identified through it) and its last sequence to its pending erasure; return the
    recorded sequence and ids.

    Idempotent; ids and sequence recorded by an earlier attempt are kept, the TTL restarts.
    """
    candidate = keys.candidate(tenant_id, candidate_id)
    pending = keys.pending_erasure(tenant_id, candidate_id)
    seq, ids = await _script(redis, "erasure_pending")(
        keys=[pending, candidate.profile, candidate.merged],
        args=[PENDING_ERASURE_SECONDS, *sorted(found)],
    )
    return int(seq), tuple(sorted({text(i) for i in ids} - {candidate_id}))


async def forget(redis: RedisClient, keys: KeyLayout, erasure: Erasure) -> None:
    """Delete the pending erasure whose records were all published, unless a concurrent erasure
    recorded more ids or a later sequence meanwhile. Idempotent."""
    pending = keys.pending_erasure(erasure.tenant_id, erasure.candidate_id)
    args = [erasure.last_sequence, len(erasure.merged_ids)]
    await _script(redis, "erasure_done")(keys=[pending], args=args)


async def _owners(
    redis: RedisClient, keys: KeyLayout, tenant_id: str, candidate_id: str
) -> list[str]:
    """The candidates an id erased on its own is merged into: its ``merged_into`` chain, and the
    chains of those recorded by an earlier attempt (folded onward since), kept in its pending
    erasure (field ``o``, a JSON array) before its profile goes, so a retry after the wipe still
    has them; [] for a candidate merged into no one."""
    pending = keys.pending_erasure(tenant_id, candidate_id)
    recorded_text = await redis.hget(pending, "o")
    recorded = [str(o) for o in orjson.loads(recorded_text)] if recorded_text else []
    owners: list[str] = []
    for start in (candidate_id, *recorded):
        if start != candidate_id and start not in owners:
            owners.append(start)
        into = await redis.hget(keys.candidate(tenant_id, start).profile, "m")
        for _ in range(MAX_HOPS):
            if into is None or text(into) in owners or text(into) == candidate_id:
                break
            owners.append(text(into))
            into = await redis.hget(keys.candidate(tenant_id, owners[-1]).profile, "m")
    if owners != recorded:
        async with redis.pipeline(transaction=False) as pipe:
            pipe.hset(pending, "o", orjson.dumps(owners))
            pipe.expire(pending, PENDING_ERASURE_SECONDS)
            await pipe.execute()
    return owners


async def _detach(
    redis: RedisClient, keys: KeyLayout, tenant_id: str, owners: list[str], ids: list[str]
) -> None:
    """Take the erased ids out of the merged-ids sets of ``owners`` (an id erased on its own: the
    candidates it was folded into). They are no part of those any more: an identify folding it
    in again is a new merge, not a duplicate, and erasing one of them leaves the new profile it
    starts alone. After the wipes: until its keys are gone the id is still marked merged into its
    owner, so a merge of it meanwhile is a duplicate (its frozen history would count twice), and
    once they are gone a merge of it finds nothing to add."""
    for owner in owners:
        await redis.srem(keys.candidate(tenant_id, owner).merged, *ids)


async def _identified_through(
    redis: RedisClient, keys: KeyLayout, tenant_id: str, candidate_id: str, owners: list[str]
) -> set[str]:
    """The ids folded in through a candidate merged itself (``owners``: its own): merged into it
    after it was folded into another id, they went on to the candidate it resolves to and are in
    that one's merged ids, not its own, but their ``merged_into`` chain reaches it (u2 aliased
    into u1, then anon:s identified as u2: anon:s is u2's, erased with u2 alone). Read only."""
    if not owners:
        return set()
    async with redis.pipeline(transaction=False) as pipe:
        for owner in owners:
            pipe.smembers(keys.candidate(tenant_id, owner).merged)
        replies = await pipe.execute()
    members = sorted({text(m) for found in replies for m in found} - {candidate_id, *owners})
    if not members:
        return set()
    async with redis.pipeline(transaction=False) as pipe:
        for member in members:
            pipe.hget(keys.candidate(tenant_id, member).profile, "m")
        links = {
            m: None if into is None else text(into)
            for m, into in zip(members, await pipe.execute(), strict=True)
        }
    through = {candidate_id}
    grew = True
    while grew:  # a chain of them: an id folded into one of them before it was identified
        fresh = {m for m, into in links.items() if into in through and m not in through}
        through |= fresh
        grew = bool(fresh)
    return through - {candidate_id}


async def _merged_into(
    redis: RedisClient, keys: KeyLayout, tenant_id: str, candidate_id: str
) -> set[str]:
    """Every id merged into the candidate, directly or through other merged ids (read only)."""
    seen, todo = {candidate_id}, [candidate_id]
    while todo:
        members = await redis.smembers(keys.candidate(tenant_id, todo.pop()).merged)
        fresh = {text(m) for m in members} - seen
        seen |= fresh
        todo.extend(fresh)
    return seen - {candidate_id}


def _script(redis: RedisClient, name: str) -> AsyncScript:
    return redis.register_script(_source(name))


@cache
def _source(name: str) -> str:
    return lua_source(name)
