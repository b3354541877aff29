"""Decay crossings found by the sweep, and nothing lost or repeated across restarts and SIGKILL."""

from __future__ import annotations

import asyncio
import signal
import time
from datetime import UTC, datetime

import orjson

from engagement.model.records import ScoreChange
from engagement.model.rules import load_rules
from engagement.model.score_views import Snapshot
from engagement.model.scoring import crossing_time, rank_key
from engagement.store.connection import connect
from engagement.store.redis_keys import KeyLayout
from engagement.store.redis_store import ScoreStore
from tests.integration.notifier.conftest import create_topics, score_change, webhooks_toml
from tests.integration.notifier.test_alerts_and_webhooks import eventually
from tests.support.kafka import read_topic

SWEEP = 1.0


async def hot_candidate(
    redis_url: str, notifier, tenant: str, candidate: str, *, raw: float, t0: float, sequence=1
) -> None:
    """Put a hot candidate into Redis as the scorer does (its profile, tier sets, sequence and
    tenant)."""
    prefix = notifier.env["REDIS_KEY_PREFIX"]
    client = connect(redis_url)
    try:
        rules = load_rules(notifier.env["RULES_FILE"])
        store = ScoreStore(client, prefix=prefix, rules=rules)
        snapshot = Snapshot(
            as_of=t0, raw=raw, pillars={}, channels={}, sequence=sequence, score=83, tier="hot"
        )
        profile = {
            "s": sequence,
            "r": repr(raw),
            "t": repr(t0),
            "g": 1 + rules.tier_names.index("hot"),
        }
        await client.hset(store.keys.candidate(tenant, candidate).profile, mapping=profile)
        assert await store.update_rank(tenant, candidate, snapshot)
        await client.sadd(KeyLayout(prefix).tenants, tenant)
    finally:
        await client.aclose()


async def alerts_of(bootstrap, topics, candidate, done, timeout=40.0) -> list[dict]:
    def mine(records):
        return [v for r in records if (v := orjson.loads(r.value))["candidateId"] == candidate]

    return mine(
        await read_topic(
            bootstrap, topics.candidate_alerts, timeout=timeout, until=lambda rs: done(mine(rs))
        )
    )


def crossing(raw: float, t0: float, score: int, h: float) -> float:
    return crossing_time(rank_key(raw, t0, h), score, 50.0, h)


def ms(moment: str) -> float:
    return datetime.fromisoformat(moment.replace("Z", "+00:00")).timestamp()


async def decaying_notifier(kafka_bootstrap, topics, redis_prefix, receiver, make_notifier, h):
    """A started notifier whose rules have a half-life of ``h`` seconds."""
    await create_topics(kafka_bootstrap, topics)
    notifier = make_notifier(
        prefix=topics.prefix,
        redis_prefix=redis_prefix,
        webhooks=webhooks_toml(receiver, {}),
        half_life_days=h / 86400,
    )
    await asyncio.to_thread(notifier.start)
    return notifier


def hot_record(candidate: str, t0: float) -> ScoreChange:
    """The score record that made ``candidate`` hot (raw 90 → score 83) at ``t0``."""
    return score_change(
        "acme",
        candidate,
        1,
        score=83,
        tier="hot",
        previous="cold",
        raw=90.0,
        as_of=datetime.fromtimestamp(t0, UTC),
    )


async def test_a_hot_candidate_cools_by_decay_within_one_sweep_exactly_once(
    kafka_bootstrap, redis_url, topics, redis_prefix, receiver, make_notifier, feed_for
):
    # given a notifier with a 4 s half-life and a hot candidate (raw 90 → score 83) scored now
    h = 4.0
    notifier = await decaying_notifier(
        kafka_bootstrap, topics, redis_prefix, receiver, make_notifier, h
    )
    t0 = time.time()
    await hot_candidate(redis_url, notifier, "acme", "d1", raw=90.0, t0=t0)
    await feed_for(topics).send(hot_record("d1", t0))
    # when it decays below hot's exit (65) and later below warm's exit (35)
    alerts = await alerts_of(kafka_bootstrap, topics, "d1", lambda a: len(a) >= 3)
    # then: hot, then cooled at the computed instant, then cold — each once, each within a sweep
    assert [(a["type"], a["tier"]) for a in alerts] == [
        ("candidate.hot", "hot"),
        ("candidate.cooled", "warm"),
        ("candidate.tier_changed", "cold"),
    ]
    for alert, exit_ in zip(alerts[1:], (65, 35), strict=True):
        expected = crossing(90.0, t0, exit_, h)
        assert abs(ms(alert["cause"]["crossedAt"]) - expected) < 0.002
        assert expected <= ms(alert["time"]) <= expected + SWEEP + 2.0  # found by the next sweep
    # and further sweeps repeat nothing
    await asyncio.sleep(3 * SWEEP)
    assert len(await alerts_of(kafka_bootstrap, topics, "d1", lambda a: False, timeout=1)) == 3


async def test_a_hot_candidate_cools_after_an_event_that_published_no_score_record(
    kafka_bootstrap, redis_url, topics, redis_prefix, receiver, make_notifier, feed_for
):
    # given a hot candidate announced at sequence 1 whose stored state is at sequence 2: the
    # second event left the integer score unchanged, so the scorer published no record for it
    h = 4.0
    notifier = await decaying_notifier(
        kafka_bootstrap, topics, redis_prefix, receiver, make_notifier, h
    )
    t0 = time.time()
    await hot_candidate(redis_url, notifier, "acme", "d2", raw=90.0, t0=t0, sequence=2)
    await feed_for(topics).send(hot_record("d2", t0))
    # when it decays below hot's exit
    alerts = await alerts_of(kafka_bootstrap, topics, "d2", lambda a: len(a) >= 2)
    # then the sweep announces the cooling (at the stored sequence)
    assert [(a["type"], a["tier"], a["sequence"]) for a in alerts[:2]] == [
        ("candidate.hot", "hot", 1),
        ("candidate.cooled", "warm", 2),
    ]


async def test_a_restart_between_sweeps_neither_misses_nor_repeats_a_decay_crossing(
    kafka_bootstrap, redis_url, topics, redis_prefix, receiver, make_notifier, feed_for
):
    h = 10.0  # crosses hot's exit ~8 s after t0 (during the restart), warm's exit ~21 s after
    first = await decaying_notifier(
        kafka_bootstrap, topics, redis_prefix, receiver, make_notifier, h
    )
    t0 = time.time()
    await hot_candidate(redis_url, first, "acme", "d2", raw=90.0, t0=t0)
    await feed_for(topics).send(hot_record("d2", t0))
    await alerts_of(kafka_bootstrap, topics, "d2", lambda a: len(a) >= 1)
    # when the notifier stops before the crossing and another one starts (same group, same Redis)
    await asyncio.to_thread(first.stop)
    second = make_notifier(
        prefix=topics.prefix,
        redis_prefix=redis_prefix,
        webhooks=webhooks_toml(receiver, {}),
        half_life_days=h / 86400,
    )
    second.env = {**first.env, "NOTIFIER_WEB_PORT": second.env["NOTIFIER_WEB_PORT"]}
    await asyncio.to_thread(second.start)
    # then every crossing is alerted exactly once with its computed instant: hot → warm → cold, or
    # — if the restart outlasted both crossings — hot → cold as one move
    await alerts_of(kafka_bootstrap, topics, "d2", lambda a: a[-1]["tier"] == "cold", timeout=60)
    await asyncio.sleep(2 * SWEEP)
    alerts = await alerts_of(kafka_bootstrap, topics, "d2", lambda a: False, timeout=1)
    moves = [(a["previousTier"], a["tier"]) for a in alerts]
    assert moves in (
        [("cold", "hot"), ("hot", "warm"), ("warm", "cold")],
        [("cold", "hot"), ("hot", "cold")],
    )
    for alert, exit_ in zip(alerts[1:], (65, 35) if len(alerts) == 3 else (35,), strict=True):
        assert abs(ms(alert["cause"]["crossedAt"]) - crossing(90.0, t0, exit_, h)) < 0.002


async def test_deliveries_pending_when_the_notifier_is_killed_are_delivered_after_restart(
    kafka_bootstrap,
    redis_url,
    redis_client,
    topics,
    redis_prefix,
    receiver,
    make_notifier,
    feed_for,
):
    # given a receiver answering 503 with Retry-After: 2 once, then 200
    path = f"/hooks/slow{redis_prefix.replace(':', '')}"
    name = path.rsplit("/", 1)[1]
    receiver.scripts[path] = [503, 200]
    receiver.retry_after[path] = "2"
    await create_topics(kafka_bootstrap, topics)
    first = make_notifier(
        prefix=topics.prefix,
        redis_prefix=redis_prefix,
        webhooks=webhooks_toml(receiver, {name: {}}),
    )
    await asyncio.to_thread(first.start)
    await feed_for(topics).send(
        score_change("acme", "k1", 1, score=90, tier="hot", previous="cold")
    )
    await eventually(lambda: receiver.on(path))
    # when the notifier is SIGKILLed while the retry is pending
    await asyncio.to_thread(first.stop, signal.SIGKILL)
    due = f"{redis_prefix}{{webhooks}}:due"
    assert await redis_client.zcard(due) == 1
    second = make_notifier(
        prefix=topics.prefix,
        redis_prefix=redis_prefix,
        webhooks=webhooks_toml(receiver, {name: {}}),
    )
    second.env = {**first.env, "NOTIFIER_WEB_PORT": second.env["NOTIFIER_WEB_PORT"]}
    await asyncio.to_thread(second.start)
    # then the restarted notifier delivers it: same webhook-id, not before Retry-After
    hooks = await eventually(lambda: len(receiver.on(path)) >= 2 and receiver.on(path), timeout=40)
    assert len({h.headers["webhook-id"] for h in hooks}) == 1
    assert hooks[1].at - hooks[0].at >= 2.0
    # and nothing is left pending
    for _ in range(100):
        if not await redis_client.zcard(due):
            break
        await asyncio.sleep(0.1)
    assert await redis_client.zcard(due) == 0
