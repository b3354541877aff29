"""A merged-away candidate that was announced hot is announced cooled, exactly once.

An identity merge folds an anonymous id into a known candidate: its sums move, it leaves the tier
sets, and no later event or sweep ever names it again. The scorer publishes the source's record of
its state after the merge (score 1, the floor tier, cause ``merge`` naming the candidate it went
into), so the notifier ends the source's announced hot with one ``candidate.cooled``: also when the
merge is consumed again (a duplicate: the record is re-published), when the merge's records were
lost (the scorer died between Redis and Kafka: the replay re-publishes it) and across a notifier
killed and restarted (real broker, Redis, scorer and notifier processes; in the lost-records case
the notifier's handler in process, its Kafka sends captured).
"""

from __future__ import annotations

import asyncio
import signal
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import redis.asyncio as aioredis

from engagement.kafka.admin import ensure_topics
from engagement.kafka.topics import Topics
from engagement.model.records import Interaction
from engagement.model.rules import load_rules
from engagement.store.redis_store import ScoreStore
from services.notifier.handler import ScoreRecord
from tests.integration.notifier.conftest import webhooks_toml
from tests.integration.notifier.test_decay_and_restarts import SWEEP, alerts_of
from tests.integration.notifier.test_exactly_once_alerts import Topic
from tests.integration.scorer.expected import TEST_RULES
from tests.integration.scorer.harness import new_port, running_scorer, scorer_env
from tests.integration.scorer.test_replay_job_alerts import _notifier
from tests.support.kafka import produce_interactions, read_topic

SOURCE = "anon:v1"  # the candidate of anonymousId v1
MERGE = "merge-1"  # the messageId of the identify that folds it into u1
WARM_THEN_HOT = [("candidate.tier_changed", "cold", "warm"), ("candidate.hot", "warm", "hot")]


def _event(tenant: str, n: int, now: float) -> dict[str, Any]:
    """An application of the anonymous visitor v1 (one lifts it into warm, two into hot)."""
    t = datetime.fromtimestamp(now - 60 + n, UTC).isoformat()
    return {
        "type": "track", "messageId": f"v1-{n}", "tenantId": tenant, "sourceId": "site",
        "channel": "web", "receivedAt": t, "timestamp": t, "anonymousId": "v1",
        "event": "Application Submitted", "properties": {}, "traits": {}, "context": {},
    }  # fmt: skip


def _identify(tenant: str, now: float) -> dict[str, Any]:
    """v1 logs in as u1: its profile is folded into u1's."""
    t = datetime.fromtimestamp(now - 50, UTC).isoformat()
    return {
        "type": "identify", "messageId": MERGE, "tenantId": tenant, "sourceId": "site",
        "channel": "web", "receivedAt": t, "timestamp": t, "userId": "u1", "anonymousId": "v1",
        "properties": {}, "traits": {}, "context": {},
    }  # fmt: skip


async def _scorer_env(
    kafka: str, redis_url: str, topics: Topics, redis_prefix: str, tmp_path: Path
) -> dict[str, str]:
    """A scorer's env (the test rules written to a file), once the topics are made (3
    partitions)."""
    rules_file = tmp_path / "rules.toml"
    rules_file.write_text(TEST_RULES)
    await ensure_topics(kafka, topics, partitions=3, replication_factor=1)
    env = scorer_env(
        kafka=kafka,
        redis_url=redis_url,
        topic_prefix=topics.prefix,
        redis_prefix=redis_prefix,
        rules_file=rules_file,
        port=new_port(),
    )
    return env


def _source_merge_records(records: list[Any]) -> list[dict[str, Any]]:
    """The change records of the merge's source past its two applications (sequences 1 and 2):
    its state after the merge, whatever their cause says."""
    values = [orjson.loads(r.value) for r in records if r.value]
    return [v for v in values if v["candidateId"] == SOURCE and v["sequence"] > 2]


def _cooled(alerts: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [a for a in alerts if a["type"] == "candidate.cooled"]


async def test_a_merged_away_hot_candidate_is_cooled_once_across_duplicates_and_a_restart(
    kafka_bootstrap: str,
    redis_url: str,
    topics: Topics,
    topic_prefix: str,
    redis_prefix: str,
    unique: str,
    tmp_path: Path,
    make_notifier: Any,
    receiver: Any,
) -> None:
    # given a scorer and a notifier, and the anonymous v1 announced hot after two applications
    env = await _scorer_env(kafka_bootstrap, redis_url, topics, redis_prefix, tmp_path)
    tenant, now = f"r{unique}", time.time()
    options = {"KAFKA_TOPIC_PARTITIONS": "3", "half_life_days": 1.0}
    webhooks = webhooks_toml(receiver, {})
    first = make_notifier(
        prefix=topic_prefix, redis_prefix=redis_prefix, webhooks=webhooks, **options
    )
    with running_scorer(env):
        await asyncio.to_thread(first.start)
        await produce_interactions(
            kafka_bootstrap, topics.interactions, [_event(tenant, n, now) for n in (0, 1)]
        )
        hot = await alerts_of(kafka_bootstrap, topics, SOURCE, lambda a: len(a) >= 2, timeout=60)
        assert [(a["type"], a["previousTier"], a["tier"]) for a in hot] == WARM_THEN_HOT

        # when v1 logs in as u1 (its profile folded into u1's)
        await produce_interactions(kafka_bootstrap, topics.interactions, [_identify(tenant, now)])
        # then v1 is announced cooled, by the merge into u1
        alerts = await alerts_of(kafka_bootstrap, topics, SOURCE, lambda a: bool(_cooled(a)), 60)
        assert [(a["type"], a["previousTier"], a["tier"]) for a in alerts] == [
            *WARM_THEN_HOT,
            ("candidate.cooled", "hot", "cold"),
        ]
        cooled = _cooled(alerts)[0]
        assert cooled["cause"] == {
            "messageId": MERGE,
            "event": "identify",
            "type": "merge",
            "mergedInto": "u1",
        }

        # when the identify comes again (the scorer re-publishes v1's state after the merge), the
        # notifier is killed and another takes over, and the identify comes once more
        await produce_interactions(kafka_bootstrap, topics.interactions, [_identify(tenant, now)])
        await read_topic(
            kafka_bootstrap,
            topics.scores_changed,
            until=lambda rs: len(_source_merge_records(rs)) >= 2,
            timeout=60,
        )
        await asyncio.sleep(2 * SWEEP)
        await asyncio.to_thread(first.stop, signal.SIGKILL)
        second = make_notifier(
            prefix=topic_prefix, redis_prefix=redis_prefix, webhooks=webhooks, **options
        )
        second.env = {**first.env, "NOTIFIER_WEB_PORT": second.env["NOTIFIER_WEB_PORT"]}
        await asyncio.to_thread(second.start)
        await produce_interactions(kafka_bootstrap, topics.interactions, [_identify(tenant, now)])
        changes = await read_topic(
            kafka_bootstrap,
            topics.scores_changed,
            until=lambda rs: len(_source_merge_records(rs)) >= 3,
            timeout=60,
        )
        await asyncio.sleep(2 * SWEEP)

    # then every record of v1's state after the merge is the same state, at one sequence
    after = _source_merge_records(changes)
    assert len(after) >= 3  # the merge's, and one for each identify again
    states = {
        (r["sequence"], r["score"], r["tier"], r["raw"], orjson.dumps(r["cause"])) for r in after
    }
    assert states == {(hot[-1]["sequence"] + 1, 1, "cold", 0.0, orjson.dumps(cooled["cause"]))}
    # and the alerts topic still holds v1's one hot and one cooled
    published = await alerts_of(kafka_bootstrap, topics, SOURCE, lambda a: False, timeout=3)
    assert [(a["type"], a["id"]) for a in published] == [
        *((a["type"], a["id"]) for a in hot),
        ("candidate.cooled", cooled["id"]),
    ]


async def test_a_merge_whose_records_were_lost_cools_the_source_once_on_replay(
    kafka_bootstrap: str,
    redis_url: str,
    redis_client: aioredis.Redis,
    topics: Topics,
    topic_prefix: str,
    redis_prefix: str,
    unique: str,
    tmp_path: Path,
) -> None:
    # given the anonymous v1 announced hot from the scorer's records of its two applications
    env = await _scorer_env(kafka_bootstrap, redis_url, topics, redis_prefix, tmp_path)
    rules = load_rules(env["RULES_FILE"])
    tenant, now = f"r{unique}", time.time()
    alerts = Topic()
    notifier = _notifier(redis_client, redis_prefix, rules, alerts)
    with running_scorer(env):
        await produce_interactions(
            kafka_bootstrap, topics.interactions, [_event(tenant, n, now) for n in (0, 1)]
        )
        scored = await read_topic(
            kafka_bootstrap,
            topics.scores_changed,
            until=lambda rs: sum(orjson.loads(r.value)["candidateId"] == SOURCE for r in rs) >= 2,
            timeout=60,
        )
    await notifier.handle([ScoreRecord(r.value, r.timestamp) for r in scored])
    assert [(a["type"], a["previousTier"], a["tier"]) for a in alerts.records] == WARM_THEN_HOT
    # and the identify applied in Redis by a scorer that died before its records reached Kafka
    store = ScoreStore(redis_client, prefix=redis_prefix, rules=rules)
    applied = await store.apply_batch([Interaction.model_validate(_identify(tenant, now))])
    assert (applied[0].outcome, applied[0].merged_from) == ("merged", SOURCE)
    await produce_interactions(kafka_bootstrap, topics.interactions, [_identify(tenant, now)])

    # when the scorer consumes the identify again, and the notifier takes every record twice
    with running_scorer(env):
        changes = await read_topic(
            kafka_bootstrap,
            topics.scores_changed,
            until=lambda rs: bool(_source_merge_records(rs)),
            timeout=60,
        )
    batch = [ScoreRecord(r.value, r.timestamp) for r in changes]
    await notifier.handle(batch)
    await notifier.handle(batch)

    # then v1's hot is ended by one cooled, the merge's, at v1's sequence of the merge
    mine = [a for a in alerts.records if a["candidateId"] == SOURCE]
    assert [(a["type"], a["previousTier"], a["tier"]) for a in mine] == [
        *WARM_THEN_HOT,
        ("candidate.cooled", "hot", "cold"),
    ]
    source = applied[0].merged_source
    assert source is not None and mine[-1]["sequence"] == source.sequence
    assert mine[-1]["cause"]["mergedInto"] == "u1"
