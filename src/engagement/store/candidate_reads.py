"""Reads of one candidate in the score store: its view (state, decayed contributions, merged ids)
and the state a stored profile hash holds, valued at an instant passed in.
"""

from __future__ import annotations

from typing import Protocol

from engagement.model.rules import Rules
from engagement.model.score_views import (
    PILLAR_FIELDS,
    PILLAR_OF_FIELD,
    CandidateView,
    Contribution,
    Snapshot,
    unescape,
)
from engagement.model.scoring import decay, score_of
from engagement.model.tiers import decayed_index
from engagement.store.connection import RedisClient
from engagement.store.merge_store import MAX_HOPS
from engagement.store.redis_keys import KeyLayout
from engagement.store.store_scripts import text


class ProfileStore(Protocol):
    """What reading a candidate needs: the client, the key layout, the tenant's rules."""

    redis: RedisClient
    keys: KeyLayout
    rules: Rules


async def candidate_view(
    store: ProfileStore, tenant_id: str, candidate_id: str, now: float, hops: int = 0
) -> CandidateView | None:
    """The candidate decayed to ``max(now, reference time)``; follows merged anonymous ids."""
    keys = store.keys.candidate(tenant_id, candidate_id)
    pipe = store.redis.pipeline(transaction=False)
    pipe.hgetall(keys.profile)
    pipe.lrange(keys.contributions, 0, -1)
    pipe.smembers(keys.merged)
    raw_profile, raw_contribs, merged = await pipe.execute()
    profile = {text(k): text(v) for k, v in raw_profile.items()}
    if "m" in profile and hops < MAX_HOPS:
        return await candidate_view(store, tenant_id, profile["m"], now, hops + 1)
    if "t" not in profile:
        return None
    state = profile_snapshot(store, profile, now)
    h = store.rules.half_life_seconds
    contributions = tuple(_contribution(text(c), state.as_of or now, h) for c in raw_contribs)
    ids = tuple(sorted(text(m) for m in merged))
    return CandidateView(tenant_id, candidate_id, state, contributions, ids)


def profile_snapshot(store: ProfileStore, profile: dict[str, str], now: float) -> Snapshot:
    """A stored profile hash decayed to ``max(now, t_ref)``, tier decayed with hysteresis."""
    rules, h = store.rules, store.rules.half_life_seconds
    t_ref = float(profile["t"])
    as_of = max(now, t_ref)
    dt = as_of - t_ref
    raw = decay(float(profile.get("r", 0.0)), dt, h)
    score = score_of(raw, rules.score_scale)
    tier = decayed_index(int(profile.get("g", 1)) - 1, score, rules.tiers)
    channels = {k[2:]: decay(float(v), dt, h) for k, v in profile.items() if k.startswith("c:")}
    return Snapshot(
        as_of=as_of,
        raw=raw,
        pillars={p: decay(float(profile.get(f, 0.0)), dt, h) for p, f in PILLAR_FIELDS.items()},
        channels=channels,
        sequence=int(profile.get("s", 0)),
        score=score,
        tier=rules.tiers[tier].name,
        last_event_at=t_ref,
        rules_version=profile.get("v"),
    )


def _contribution(item: str, as_of: float, h: float) -> Contribution:
    t, w, pillar, channel, event, message_id = item.split("\x1f", 5)
    return Contribution(
        message_id=unescape(message_id),
        event=unescape(event),
        pillar=PILLAR_OF_FIELD.get(pillar, pillar),
        channel=unescape(channel),
        points=float(w),
        current_points=decay(float(w), as_of - float(t), h),
        at=float(t),
    )
