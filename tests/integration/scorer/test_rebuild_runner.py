"""``services.scorer.rebuild_runner``: one scorer process per tenant runs a requested rebuild, and
one that takes over a request whose runner stopped fences the earlier attempt off (on Redis; an
activation decided and not published: test_rebuild_activation.py; the whole rebuild through the
API: test_tenant_rebuild.py)."""

from __future__ import annotations

import asyncio

from engagement.kafka.rules_topic import RebuildMarker
from engagement.model.rules import parse_template
from engagement.model.templates import Templates
from engagement.store.connection import RedisClient
from engagement.store.rebuild_requests import RebuildRequests
from engagement.store.redis_keys import KeyLayout
from engagement.store.redis_store import ScoreStore
from engagement.store.templated_store import GenerationLayout, handover_key
from services.scorer.rebuild_runner import RebuildRunner
from services.scorer.tenant_rebuild import Rebuild, at_marker
from tests.integration.scorer.expected import TEST_RULES

NOW = "2026-01-01T00:00:00+00:00"


def runner(redis: RedisClient, prefix: str) -> RebuildRunner:
    rules = parse_template(TEST_RULES, source="test")
    rebuild = Rebuild(
        redis=redis,
        base=ScoreStore(redis, prefix=prefix, rules=rules),
        templates=Templates(rules),
        bootstrap_servers="unused:9092",  # the attempts here end before the replay
        topics=None,  # type: ignore[arg-type]
        live_group="unused",
    )
    requests = RebuildRequests(redis, KeyLayout(prefix))
    return RebuildRunner(requests, rebuild, rebuild.templates, version_wait=0.2)


async def test_one_process_holds_a_tenants_lock_until_it_lapses_or_is_released(
    redis_client: RedisClient, redis_prefix: str
):
    requests = RebuildRequests(redis_client, KeyLayout(redis_prefix))
    assert await requests.lock("T", "a")
    assert not await requests.lock("T", "b")
    assert not await requests.renew("T", "b") and await requests.renew("T", "a")
    await requests.unlock("T", "b")  # not b's: stays
    assert not await requests.lock("T", "b")
    await requests.unlock("T", "a")
    assert await requests.lock("T", "b")


async def test_an_attempt_rescores_into_a_generation_no_earlier_attempt_used(
    redis_client: RedisClient, redis_prefix: str
):
    rebuild = runner(redis_client, redis_prefix).rebuild
    assert await rebuild.fresh_generation("T") == 1
    await redis_client.set(handover_key(KeyLayout(redis_prefix), "T", 1), "aborted")
    assert await rebuild.fresh_generation("T") == 2, "given up at its markers"
    assert await rebuild.fresh_generation("T", after=4) == 5, "an earlier attempt's"


async def test_a_taken_over_attempt_is_fenced_off_and_its_keys_dropped(
    redis_client: RedisClient, redis_prefix: str
):
    # given a request whose runner died while rescoring into generation 1
    run = runner(redis_client, redis_prefix)
    await run.requests.request("T", "t-2", NOW)
    await run.requests.update("T", state="running", generation=1, started_at=NOW)
    leftover = GenerationLayout(redis_prefix, 1).candidate("T", "c").profile
    await redis_client.hset(leftover, mapping={"s": 3})
    # when a scorer polls (the version never reaches its registry: the attempt ends there)
    await run.poll()
    # then generation 1 can no longer be activated, its keys are gone, and the new attempt
    # used generation 2
    layout = KeyLayout(redis_prefix)
    assert await redis_client.get(handover_key(layout, "T", 1)) == b"aborted"
    assert not await redis_client.exists(leftover)
    done = await run.requests.latest("T")
    assert done is not None and (done.state, done.generation) == ("aborted", 2), done
    assert "t-2" in (done.error or "")
    assert await run.requests.queued() == []
    assert await run.requests.lock("T", "next"), "released"


async def test_an_attempt_that_fails_before_activating_is_given_up_at_its_markers(
    redis_client: RedisClient, redis_prefix: str
):
    # given a requested rebuild
    run = runner(redis_client, redis_prefix)
    await run.requests.request("T", "t-2", NOW)
    # when its attempt fails before its activation (the version never reaches the registry)
    await run.poll()
    # then it is recorded aborted with its handover key aborted: live scorers at its markers go
    # on at once, and no later attempt reuses its generation
    done = await run.requests.latest("T")
    assert done is not None and (done.state, done.generation) == ("aborted", 1), done
    assert await redis_client.get(handover_key(KeyLayout(redis_prefix), "T", 1)) == b"aborted"
    assert await run.rebuild.fresh_generation("T") == 2


async def test_a_live_scorer_at_a_marker_of_an_aborted_rebuild_goes_on_at_once(
    redis_client: RedisClient, redis_prefix: str
):
    # given a rebuild into generation 3 of T given up (another scorer, or a takeover's fence)
    keys = KeyLayout(redis_prefix)
    await redis_client.set(handover_key(keys, "T", 3), "aborted")
    templates = Templates(parse_template(TEST_RULES, source="test"))  # T at generation 0
    # when a live scorer that would wait for ever reaches that rebuild's marker
    wait = at_marker(templates, redis_client, keys, patience=1e9)
    # then it goes on (the timeout only guards the test against a hang)
    await asyncio.wait_for(wait(RebuildMarker("T", 3)), timeout=60)
    assert await redis_client.get(handover_key(keys, "T", 3)) == b"aborted"
