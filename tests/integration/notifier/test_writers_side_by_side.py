"""The score-record handler and the decay sweep write the same candidates' states side by side
(one notifier runs both): every state is written only over the state it was decided from, a
decision refused so is made again from what is stored now, and the sweep decides a candidate it
found in a crossing range from its stored state, not from the rank the range read (the scorer
may have moved it since). Real Redis and store; the handler and the sweep in process, the
alerts topic captured (docs/alerts.md)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
import redis.asyncio as aioredis

from engagement.model.alerts import Notified, build_alert, tier_level
from engagement.model.job_alerts import JobKey
from engagement.model.records import ScoreChange
from engagement.model.scoring import crossing_time, rank_key
from engagement.store.redis_keys import KeyLayout
from engagement.store.redis_store import ScoreStore
from services.notifier import job_sweep as job_sweep_module
from services.notifier import sweep as sweep_module
from services.notifier.delivery_queue import DeliveryQueue
from services.notifier.handler import ChangeHandler, ScoreRecord
from services.notifier.job_state import JobNotifiedStore, LoadedJobs
from services.notifier.job_sweep import JobSweep
from services.notifier.metrics import NotifierMetrics
from services.notifier.publisher import AlertPublisher
from services.notifier.state import Loaded, NotifiedStore
from services.notifier.sweep import Hit
from tests.integration.engagement.store.test_job_profiles import job_event
from tests.integration.notifier.conftest import score_change
from tests.integration.notifier.test_exactly_once_alerts import RULES as HANDLER_RULES
from tests.integration.notifier.test_exactly_once_alerts import WEBHOOKS, Topic, consistent
from tests.integration.notifier.test_job_alerts import with_job
from tests.integration.notifier.test_quiet_rise import HOT, LoadHook, WrittenMeanwhile, sweep_on
from tests.unit.engagement.model.strategies import RULES, T0, interaction

H, SCALE = RULES.half_life_seconds, RULES.score_scale


def handler_on(state: NotifiedStore, topic: Topic, redis: aioredis.Redis, prefix: str) -> Any:
    metrics = NotifierMetrics()
    queue = DeliveryQueue(redis, prefix=prefix, retention_s=3600)
    publisher = AlertPublisher(send=topic.send, queue=queue, webhooks=WEBHOOKS, metrics=metrics)

    async def dead_letter(key: bytes, value: bytes) -> None:
        raise AssertionError("no record of this test is bad")

    return ChangeHandler(
        rules=HANDLER_RULES,
        state=state,
        publisher=publisher,
        metrics=metrics,
        dead_letter=dead_letter,
    )


def record(change: ScoreChange) -> ScoreRecord:
    return ScoreRecord(change.model_dump_json().encode(), None)


async def test_a_state_the_sweep_writes_while_the_handler_decides_is_announced_from(
    redis_client: aioredis.Redis, redis_prefix: str
) -> None:
    # given c1 announced hot at sequence 1
    topic = Topic()
    state = WrittenMeanwhile(redis_client, prefix=redis_prefix)
    hot = tier_level(HANDLER_RULES, "hot")
    await state.store({"acme:c1": (Notified("hot", 1), hot, b"")}, base={})
    topic.records.append({"previousTier": "cold", "tier": "hot"})

    # when the sweep announces c1 cooled (warm, sequence 1) right after the handler loaded it
    async def sweep_cools(loaded: Loaded) -> None:
        warm = (Notified("warm", 1), tier_level(HANDLER_RULES, "warm"), b"")
        assert (await state.store({"acme:c1": warm}, base=loaded.states)).written
        topic.records.append({"previousTier": "hot", "tier": "warm"})

    state.meanwhile = sweep_cools
    # and the handler decides a record (sequence 2) that finds c1 hot now
    change = score_change("acme", "c1", 2, score=80, tier="hot", previous="hot")
    await handler_on(state, topic, redis_client, redis_prefix).handle([record(change)])
    # then its decision, made from hot, is not written: made again from warm, it announces hot
    assert [(a["previousTier"], a["tier"]) for a in topic.records] == [
        ("cold", "hot"),
        ("hot", "warm"),
        ("warm", "hot"),
    ]
    assert consistent(topic.records)
    assert (await state.load(["acme:c1"])).states["acme:c1"] == Notified("hot", 2)


async def test_an_outbox_stored_while_the_handler_decides_is_published_not_replaced(
    redis_client: aioredis.Redis, redis_prefix: str
) -> None:
    # given c1 announced hot at sequence 1
    topic = Topic()
    state = WrittenMeanwhile(redis_client, prefix=redis_prefix)
    await state.store({"acme:c1": (Notified("hot", 1), 2, b"")}, base={})
    topic.records.append({"previousTier": "cold", "tier": "hot"})
    cooled = build_alert(
        rules=HANDLER_RULES,
        type_="candidate.cooled",
        tenant_id="acme",
        candidate_id="c1",
        tier="warm",
        previous_tier="hot",
        score=50,
        sequence=1,
        time=datetime.now(UTC),
        cause={"type": "decay"},
    )

    # when, right after the handler loaded c1, the sweep stores c1 cooled with its alert as the
    # outbox and its process is killed before publishing it
    async def sweep_stores_and_dies(loaded: Loaded) -> None:
        outbox = orjson.dumps([cooled.model_dump(mode="json")])
        warm = (Notified("warm", 1), 1, outbox)
        assert (await state.store({"acme:c1": warm}, base=loaded.states)).written

    state.meanwhile = sweep_stores_and_dies
    # and the handler decides a record (sequence 2) that finds c1 hot now
    change = score_change("acme", "c1", 2, score=80, tier="hot", previous="hot")
    await handler_on(state, topic, redis_client, redis_prefix).handle([record(change)])
    # then the sweep's alert is published (from its outbox), before the handler's own
    assert [(a["previousTier"], a["tier"]) for a in topic.records] == [
        ("cold", "hot"),
        ("hot", "warm"),
        ("warm", "hot"),
    ]
    assert topic.records[1]["id"] == cooled.id
    assert (await state.load(["acme:c1"])).pending == {}


async def hot_at_t0(store: ScoreStore, sweep: sweep_module.DecaySweep, topic: Topic) -> float:
    """c1 scored hot at T0 (sequence 2) and announced hot; when it falls below hot's exit."""
    outcomes = await store.apply_batch(
        [
            interaction("a1", T0, event="Application Submitted", user_id="c1"),
            interaction("a2", T0, event="Application Submitted", user_id="c1"),
        ]
    )
    after = outcomes[-1].after
    assert after is not None and after.tier == "hot" and after.sequence == 2
    level = tier_level(RULES, "hot")
    await sweep.state.store({"acme:c1": (Notified("hot", 2), level, b"")}, base={})
    topic.records.append({"previousTier": "cold", "tier": "hot"})
    return crossing_time(rank_key(after.raw, T0, H), HOT.exit, SCALE, H)


async def test_a_candidate_moved_after_the_range_read_is_decided_from_its_stored_state(
    redis_client: aioredis.Redis, redis_prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given c1 hot at T0, announced hot, and fallen below hot's exit by the sweep's now
    topic = Topic()
    store = ScoreStore(redis_client, prefix=redis_prefix, rules=RULES)
    sweep = sweep_on(redis_client, redis_prefix, topic)
    crossed = await hot_at_t0(store, sweep, topic)
    now = crossed + 60
    # when the scorer scores a new application for c1 right after the sweep's range read found it
    # (hot again, sequence 3: its score record is on its way to the handler)
    real = sweep_module.crossings

    async def then_scored(*args: Any, **kwargs: Any) -> AsyncIterator[dict[str, Hit]]:
        async for hits in real(*args, **kwargs):
            assert "c1" in hits
            [moved] = await store.apply_batch(
                [interaction("a3", now, event="Application Submitted", user_id="c1")]
            )
            assert moved.after is not None and moved.after.tier == "hot"
            yield hits

    monkeypatch.setattr(sweep_module, "crossings", then_scored)
    published = await sweep.run(now=now)
    # then the sweep announces nothing: c1 is hot now, whatever the rank it read
    assert published == []
    assert (await sweep.state.load(["acme:c1"])).states["acme:c1"] == Notified("hot", 2)


async def test_a_decay_refused_because_the_handler_moved_the_state_is_decided_again(
    redis_client: aioredis.Redis, redis_prefix: str
) -> None:
    # given c1 hot at T0, announced hot, and fallen well below hot's exit by the sweep's now
    topic = Topic()
    store = ScoreStore(redis_client, prefix=redis_prefix, rules=RULES)
    sweep = sweep_on(redis_client, redis_prefix, topic)
    state = WrittenMeanwhile(redis_client, prefix=redis_prefix, tiers=RULES.tier_names)
    sweep.state = state
    sweep.publisher.queue = DeliveryQueue(redis_client, prefix=redis_prefix, retention_s=3600)
    crossed = await hot_at_t0(store, sweep, topic)
    now = crossed + H / 4

    # when, right after the sweep loaded c1, a late event moves it on (sequence 3, still below
    # hot's exit now) and the handler announces that state (hot at its instant)
    async def handler_moves(loaded: Loaded) -> None:
        [late] = await store.apply_batch(
            [interaction("late", T0 - 86400, event="Job Viewed", received=now, user_id="c1")]
        )
        assert late.after is not None and late.after.sequence == 3
        write = {"acme:c1": (Notified("hot", 3), tier_level(RULES, "hot"), b"")}
        assert (await state.store(write, base=loaded.states)).written

    state.meanwhile = handler_moves
    published = await sweep.run(now=now)
    # then the sweep's decision from sequence 2 is refused, and made again from sequence 3
    assert published is not None
    assert [(a.previousTier, a.tier, a.sequence) for a in published] == [("hot", "warm", 3)]
    assert published[0].cause["type"] == "decay"
    assert datetime.fromisoformat(published[0].cause["crossedAt"]) <= datetime.fromtimestamp(
        now, UTC
    )
    assert consistent(topic.records)
    assert (await state.load(["acme:c1"])).states["acme:c1"] == Notified("warm", 3)


class JobsWrittenMeanwhile(LoadHook, JobNotifiedStore):
    """The notifier's job states, with a ``LoadHook``."""

    async def load(self, keys: Iterable[JobKey]) -> LoadedJobs:
        return await self.after_load(await super().load(keys))


async def test_a_job_state_the_sweep_writes_while_the_handler_decides_is_announced_from(
    redis_client: aioredis.Redis, redis_prefix: str
) -> None:
    # given (c1, J-1) announced hot at sequence 1
    topic = Topic()
    jobs = JobsWrittenMeanwhile(redis_client, prefix=redis_prefix)
    key = ("acme:c1", "J-1")
    hot, warm = (tier_level(HANDLER_RULES, t) for t in ("hot", "warm"))
    await jobs.store({key: (Notified("hot", 1), hot, b"")}, base={})
    topic.records.append({"jobId": "J-1", "previousTier": "cold", "tier": "hot"})

    # when the job sweep announces it cooled (warm, sequence 1) right after the handler loaded it
    async def sweep_cools(loaded: LoadedJobs) -> None:
        cooled = {key: (Notified("warm", 1), warm, b"")}
        assert (await jobs.store(cooled, base=loaded.states)).written
        topic.records.append({"jobId": "J-1", "previousTier": "hot", "tier": "warm"})

    jobs.meanwhile = sweep_cools
    # and the handler decides a record (sequence 2) whose entry finds c1 hot for J-1 now
    handler = handler_on(
        WrittenMeanwhile(redis_client, prefix=redis_prefix), topic, redis_client, redis_prefix
    )
    handler.jobs = jobs
    await handler.handle([record(with_job("c1", 2, "J-1", "hot", "hot"))])
    # then its decision, made from hot, is not written: made again from warm, it announces hot
    chain = [a for a in topic.records if a.get("jobId") == "J-1"]
    assert [(a["previousTier"], a["tier"]) for a in chain] == [
        ("cold", "hot"),
        ("hot", "warm"),
        ("warm", "hot"),
    ]
    assert (await jobs.load([key])).states[key] == Notified("hot", 2)


async def test_a_job_moved_after_the_range_read_is_decided_from_its_stored_profile(
    redis_client: aioredis.Redis, redis_prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given c1 hot for J-1 at T0 (sequence 2), announced hot, and below hot's exit by now
    topic = Topic()
    store = ScoreStore(redis_client, prefix=redis_prefix, rules=RULES)
    outcomes = await store.apply_batch(
        [
            job_event("a1", T0, "J-1", event="Application Submitted", user="c1"),
            job_event("a2", T0, "J-1", event="Application Submitted", user="c1"),
        ]
    )
    [state] = [j for j in outcomes[-1].jobs if j.job_id == "J-1"]
    assert state.tier == "hot" and state.sequence == 2
    jobs = JobNotifiedStore(redis_client, prefix=redis_prefix, tiers_of=lambda t: RULES.tier_names)
    key = ("acme:c1", "J-1")
    await jobs.store({key: (Notified("hot", 2), tier_level(RULES, "hot"), b"")}, base={})
    await jobs.watch({("acme", "J-1"): float("inf")})
    crossed = crossing_time(rank_key(state.raw, T0, H), HOT.exit, SCALE, H)
    now = crossed + 60
    sweep = sweep_on(redis_client, redis_prefix, topic)
    sweep.jobs = JobSweep(redis_client, KeyLayout(redis_prefix), jobs, sweep.publisher)
    # when the scorer scores a new application for c1 and J-1 right after the range read found it
    real = job_sweep_module.crossings

    async def then_scored(*args: Any, **kwargs: Any) -> AsyncIterator[dict[str, Hit]]:
        async for hits in real(*args, **kwargs):
            if "c1" in hits and kwargs.get("sets") is not None:
                await store.apply_batch(
                    [job_event("a3", now, "J-1", event="Application Submitted", user="c1")]
                )
            yield hits

    monkeypatch.setattr(job_sweep_module, "crossings", then_scored)
    published = await sweep.run(now=now)
    # then the job sweep announces nothing for J-1: c1 is hot for it now
    assert published is not None
    assert [a for a in published if getattr(a, "jobId", None) == "J-1"] == []
    assert (await jobs.load([key])).states[key] == Notified("hot", 2)


class CountingLoads(WrittenMeanwhile):
    """The notifier's state, counting its loads (each settle round loads once)."""

    loads = 0

    async def load(self, candidate_keys: Iterable[str]) -> Loaded:
        self.loads += 1
        return await super().load(candidate_keys)


async def test_a_replayed_record_whose_candidate_decayed_since_is_decided_once_and_cools_it(
    redis_client: aioredis.Redis, redis_prefix: str
) -> None:
    # given c1 announced hot at sequence 1 by its record, scored 80 two half-lives ago
    topic = Topic()
    state = CountingLoads(redis_client, prefix=redis_prefix)
    await state.store({"acme:c1": (Notified("hot", 1), 2, b"")}, base={})
    old = datetime.now(UTC) - timedelta(days=2)
    change = score_change("acme", "c1", 1, score=80, tier="hot", previous="cold", as_of=old)
    # when the record is delivered again (a restart reads on from the last committed offset)
    await handler_on(state, topic, redis_client, redis_prefix).handle([record(change)])
    # then it is decided once (nothing moved the state), and the decay since is announced at the
    # record's own sequence: the id the sweep would give it
    assert state.loads == 1
    assert [(a["type"], a["tier"], a["sequence"]) for a in topic.records] == [
        ("candidate.cooled", "cold", 1)
    ]


async def test_a_state_stored_at_another_templates_level_is_cooled_by_the_sweep(
    redis_client: aioredis.Redis, redis_prefix: str
) -> None:
    # given c1 hot at T0 and announced hot when the tenant's template had no warm (hot: level 1)
    topic = Topic()
    store = ScoreStore(redis_client, prefix=redis_prefix, rules=RULES)
    sweep = sweep_on(redis_client, redis_prefix, topic)
    crossed = await hot_at_t0(store, sweep, topic)
    await redis_client.hset(sweep.state.key("acme:c1"), "level", 1)
    # when, under [cold, warm, hot], it falls below hot's exit and the sweep runs
    published = await sweep.run(now=crossed + 60)
    # then it is announced cooled, as any hot candidate is
    assert [(a.previousTier, a.tier) for a in published or []] == [("hot", "warm")]
