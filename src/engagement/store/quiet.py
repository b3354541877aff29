"""Candidates moved without a score record, for the notifier to look at (docs/alerts.md).

A score record goes out when an event changes the integer score at the profile's instant. Events
that do not (late ones, whose points arrive decayed) still move the state on, and can lift the
score decayed to now back over an exit the notifier has announced the candidate below: without a
record, nothing would tell it. So the scorer indexes such candidates, per tenant, in
``P{T}:quiet`` (a sorted set: candidate -> the sequence of its newest such state; ``ZADD GT``, so
a replay never lowers it), in the same pipelined round as the rank updates, and only those above
the floor tier (a candidate at the floor holds nothing an alert could have lowered).

The notifier's sweep reads the set a page at a time, decides each candidate from its stored
state, and then removes each entry unless a newer state was indexed meanwhile (``drop``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from engagement.model.score_views import ApplyOutcome, Snapshot
from engagement.store.connection import RedisClient
from engagement.store.pipelining import Command
from engagement.store.redis_keys import KeyLayout
from engagement.store.store_scripts import text

MOVED = ("scored", "merged")  # the outcomes that write a new state of their candidate

# Remove each candidate whose indexed sequence is not newer than the one handled.
_DROP = """
local dropped = 0
for at = 1, #ARGV, 2 do
  local seq = redis.call('ZSCORE', KEYS[1], ARGV[at])
  if seq and tonumber(seq) <= tonumber(ARGV[at + 1]) then
    redis.call('ZREM', KEYS[1], ARGV[at])
    dropped = dropped + 1
  end
end
return dropped
"""


def commands(
    keys: KeyLayout,
    outcomes: Sequence[ApplyOutcome],
    latest: dict[tuple[str, str], Snapshot],
    floor: str,
) -> list[Command]:
    """``ZADD GT`` of the batch's candidates that no score record of this batch announces: none
    of their outcomes changed the integer score, and their newest state is above ``floor``."""
    moved: set[tuple[str, str]] = set()  # a state of theirs is new (not a duplicate's, a cap's)
    recorded: set[tuple[str, str]] = set()
    for o in outcomes:
        key = (o.tenant_id, o.candidate_id)
        if o.outcome in MOVED:
            moved.add(key)
        if o.score_changed or o.outcome == "duplicate":  # a duplicate republishes its newest state
            recorded.add(key)
    by_tenant: dict[str, list[str]] = {}
    for (tenant, cand), snap in latest.items():
        if (tenant, cand) not in moved - recorded or snap.tier == floor or snap.merged_into:
            continue
        by_tenant.setdefault(tenant, []).extend((str(snap.sequence), cand))
    return [("ZADD", keys.quiet(t), "GT", *args) for t, args in by_tenant.items()]


async def page(
    redis: RedisClient, keys: KeyLayout, tenant: str, limit: int
) -> list[tuple[str, int]]:
    """Up to ``limit`` indexed candidates of ``tenant`` with the sequence indexed."""
    reply: list[Any] = await redis.zrange(keys.quiet(tenant), 0, limit - 1, withscores=True)
    return [(text(member), int(seq)) for member, seq in reply]


async def drop(
    redis: RedisClient, keys: KeyLayout, tenant: str, handled: Iterable[tuple[str, int]]
) -> None:
    """Remove the handled candidates, each unless a newer state was indexed since."""
    args = [part for cand, seq in handled for part in (cand, str(seq))]
    if args:
        await redis.eval(_DROP, 1, keys.quiet(tenant), *args)
