"""A candidate announced cooled by decay whom late events lift back over the exit without a score
record (their points arrive decayed and leave the integer score at the profile's instant as it
was): the scorer indexes it (``engagement.store.quiet``) and the next sweep announces the tier it
holds now, so its alerts still end where it stands (docs/alerts.md). Real Redis, the store and
the sweep in process, the alerts topic captured."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from typing import Any, TypeVar

import redis.asyncio as aioredis

from engagement.model.alerts import Notified, tier_level
from engagement.model.scoring import crossing_time, rank_key
from engagement.model.webhooks import WebhookConfig
from engagement.store.redis_keys import KeyLayout
from engagement.store.redis_store import ScoreStore
from services.notifier.delivery_queue import DeliveryQueue
from services.notifier.metrics import NotifierMetrics
from services.notifier.publisher import AlertPublisher
from services.notifier.state import Loaded, NotifiedStore
from services.notifier.sweep import DecaySweep
from tests.integration.notifier.test_exactly_once_alerts import Topic, consistent
from tests.unit.engagement.model.strategies import RULES, T0, interaction

H, SCALE = RULES.half_life_seconds, RULES.score_scale
HOT = RULES.tiers[2]
L = TypeVar("L")  # what a load returned


def sweep_on(redis: aioredis.Redis, prefix: str, topic: Topic) -> DecaySweep:
    state = NotifiedStore(redis, prefix=prefix, tiers=[t.name for t in RULES.tiers])
    publisher = AlertPublisher(
        send=topic.send,
        queue=DeliveryQueue(redis, prefix=prefix, retention_s=3600),
        webhooks=WebhookConfig(),
        metrics=NotifierMetrics(),
    )
    return DecaySweep(redis, KeyLayout(prefix), RULES, state, publisher, interval=1.0)


async def hot_and_announced(
    store: ScoreStore, sweep: DecaySweep, topic: Topic
) -> tuple[int, float]:
    """c1 scored hot at T0 and announced hot; its sequence and when it falls below hot's exit."""
    outcomes = await store.apply_batch(
        [
            interaction("a1", T0, event="Application Submitted", user_id="c1"),
            interaction("a2", T0, event="Application Submitted", user_id="c1"),
        ]
    )
    after = outcomes[-1].after
    assert after is not None and after.tier == "hot"
    announced = Notified("hot", after.sequence)
    await sweep.state.store({"acme:c1": (announced, tier_level(RULES, "hot"), b"")}, base={})
    topic.records.append({"previousTier": "cold", "tier": "hot", "sequence": after.sequence})
    return after.sequence, crossing_time(rank_key(after.raw, T0, H), HOT.exit, SCALE, H)


async def test_late_events_that_lift_a_cooled_candidate_over_the_exit_are_announced(
    redis_client: aioredis.Redis, redis_prefix: str
) -> None:
    # given c1 hot, then announced cooled by the sweep a second after it fell below hot's exit
    topic = Topic()
    store = ScoreStore(redis_client, prefix=redis_prefix, rules=RULES)
    sweep = sweep_on(redis_client, redis_prefix, topic)
    first, crossed = await hot_and_announced(store, sweep, topic)
    cooled = await sweep.run(now=crossed + 1)
    assert cooled is not None
    assert [(a.type, a.tier, a.sequence) for a in cooled] == [("candidate.cooled", "warm", first)]
    # when a late event (six days old) is scored: its points change no integer score at the
    # profile's instant, so no score record, but decayed to now they lift c1 over the exit again
    [late] = await store.apply_batch(
        [
            interaction(
                "late", T0 - 6 * 86400, event="Job Viewed", received=crossed + 1, user_id="c1"
            )
        ]
    )
    assert late.outcome == "scored" and not late.score_changed and late.after is not None
    assert late.after.tier == "hot"
    assert await redis_client.zscore(store.keys.quiet("acme"), "c1") == late.after.sequence
    # then the next sweep announces hot again, at the state's sequence, and the index empties
    rose = await sweep.run(now=crossed + 2)
    assert rose is not None
    assert [(a.type, a.previousTier, a.tier, a.sequence, a.cause) for a in rose] == [
        ("candidate.hot", "warm", "hot", late.after.sequence, {"type": "event"})
    ]
    assert await redis_client.zcard(store.keys.quiet("acme")) == 0
    chain = [*topic.records[:1], *[a.model_dump(mode="json") for a in (*cooled, *rose)]]
    assert consistent(chain)
    # and a further sweep repeats nothing
    assert await sweep.run(now=crossed + 3) == []


async def test_a_quiet_move_that_leaves_the_tier_held_now_as_announced_raises_nothing(
    redis_client: aioredis.Redis, redis_prefix: str
) -> None:
    # given c1 hot and announced hot, well before it would cool
    topic = Topic()
    store = ScoreStore(redis_client, prefix=redis_prefix, rules=RULES)
    sweep = sweep_on(redis_client, redis_prefix, topic)
    await hot_and_announced(store, sweep, topic)
    # when a late event moves it on without a record
    [late] = await store.apply_batch(
        [interaction("late", T0 - 6 * 86400, event="Job Viewed", received=T0 + 60, user_id="c1")]
    )
    assert late.outcome == "scored" and not late.score_changed
    # then the sweep announces nothing and forgets it
    assert await sweep.run(now=T0 + 120) == []
    assert await redis_client.zcard(store.keys.quiet("acme")) == 0


class LoadHook:
    """Runs ``meanwhile`` once, right after a load: another writer between a load and its write
    (the handler beside the sweep, or the sweep beside the handler: one notifier runs both)."""

    meanwhile: Callable[[Any], Awaitable[None]] | None = None

    async def after_load(self, loaded: L) -> L:
        if self.meanwhile is not None:
            write, self.meanwhile = self.meanwhile, None
            await write(loaded)
        return loaded


class WrittenMeanwhile(LoadHook, NotifiedStore):
    """The notifier's candidate states, with a ``LoadHook``."""

    async def load(self, candidate_keys: Iterable[str]) -> Loaded:
        return await self.after_load(await super().load(candidate_keys))


async def test_a_state_the_handler_writes_while_the_sweep_decides_is_not_overwritten(
    redis_client: aioredis.Redis, redis_prefix: str
) -> None:
    # given c1 announced cold at sequence 1, and a late event's state (sequence 3, warm now)
    # that published no record, indexed for the sweep
    topic = Topic()
    store = ScoreStore(redis_client, prefix=redis_prefix, rules=RULES)
    sweep = sweep_on(redis_client, redis_prefix, topic)
    state = WrittenMeanwhile(redis_client, prefix=redis_prefix, tiers=RULES.tier_names)
    sweep.state = state
    outcomes = await store.apply_batch(
        [
            interaction("a1", T0, event="Application Submitted", user_id="c1"),
            interaction("a2", T0 + 1, event="Job Viewed", user_id="c1"),
            interaction("a3", T0 + 1, event="Job Viewed", user_id="c1"),
        ]
    )
    await state.store({"acme:c1": (Notified("cold", 1), 0, b"")}, base={})
    last = outcomes[-1].after
    assert last is not None and last.tier == "warm"
    await redis_client.zadd(store.keys.quiet("acme"), {"c1": last.sequence})

    # when the handler announces warm at sequence 2 (its record) while the sweep decides c1
    async def handler_announces_warm(loaded: Loaded) -> None:
        warm = {"acme:c1": (Notified("warm", 2), 1, b"")}
        assert (await state.store(warm, base=loaded.states)).written == {"acme:c1"}

    state.meanwhile = handler_announces_warm
    first = await sweep.run(now=T0 + 2)
    # then the sweep's decision, made from cold, is not written nor published: the sweep
    # decides c1 again from warm, where there is nothing to announce, and forgets it
    assert first == []
    assert await redis_client.zcard(store.keys.quiet("acme")) == 0
    assert await sweep.run(now=T0 + 3) == []
    assert (await state.load(["acme:c1"])).states["acme:c1"] == Notified("warm", 2)
