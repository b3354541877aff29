"""A tenant's rebuild under a pending version (another half-life) while ingest and the scorer run
(issue 23, item 1; ``services.scorer.tenant_rebuild``, run by ``engagement rebuild --tenant`` and
by a scorer for ``POST /v1/rules/rebuild``): its history is rescored as the closed
form over the new version, at one switch, its sequences go on past the old ones, and the other
tenant on the same scorer is untouched."""

from __future__ import annotations

import asyncio
import time
import tomllib
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import orjson
import pytest

from engagement.model.rules import load_rules
from engagement.model.templates import Templates
from engagement.store.connection import connect
from engagement.store.redis_store import ScoreStore
from engagement.tools.tenant_rebuild import Rebuild, follow_templates, rebuild_tenant
from tests.integration.scorer.expected import TEST_RULES
from tests.integration.scorer.pipeline import Pipeline, running_pipeline, track
from tests.integration.scorer.test_tenant_templates import (
    MORE_SOURCES,
    OTHER,
    Other,
    _exact,
    _sent,
    _wait,
    version_of,
)
from tests.support.kafka import read_topic


@pytest.fixture
def both(kafka_bootstrap: str, redis_url: str, tmp_path) -> Iterator[tuple[Pipeline, Other]]:
    uid = uuid.uuid4().hex[:8]
    more = MORE_SOURCES.format(tenant=OTHER.format(uid=uid), uid=uid)
    with running_pipeline(kafka_bootstrap, redis_url, tmp_path, more_sources=more) as pipeline:
        yield pipeline, Other(pipeline, uid)


async def rebuild(pipeline: Pipeline, tenant: str) -> Any:
    """What ``engagement rebuild --tenant`` runs, against the pipeline's broker and Redis: the
    carry's report once activated."""
    redis = connect(pipeline.redis_url)
    rules = load_rules(pipeline.env["RULES_FILE"])
    follower = await follow_templates(Templates(rules), pipeline.kafka, pipeline.topics)
    try:
        run = Rebuild(
            redis=redis,
            base=ScoreStore(redis, prefix=pipeline.redis_prefix, rules=rules),
            templates=follower.templates,
            bootstrap_servers=pipeline.kafka,
            topics=pipeline.topics,
            live_group=f"{pipeline.topics.prefix}engagement-scorer",
        )
        outcome, report = await rebuild_tenant(run, tenant, pipeline.redis_prefix)
        assert outcome == "activated", outcome
        return report
    finally:
        await follower.close()
        await redis.aclose()


def requested(pipeline: Pipeline, other: Other) -> dict[str, Any]:
    """``POST /v1/rules/rebuild`` with the tenant's admin key, followed until a scorer finished."""
    headers = {"Authorization": f"Bearer {other.admin}"}
    answer = httpx.post(f"{pipeline.base}/v1/rules/rebuild", headers=headers)
    assert answer.status_code == 202, answer.text
    assert answer.json()["version"] == "other-2"
    done: dict[str, Any] = _wait(
        lambda: httpx.get(f"{pipeline.base}/v1/rules/rebuild", headers=headers),
        lambda v: v["state"] in ("activated", "aborted"),
        "the rebuild",
    )
    return done


@pytest.mark.parametrize("through", ["command", "api"])
def test_a_rebuild_rescores_one_tenant_at_one_switch_and_leaves_the_other_untouched(
    both: tuple[Pipeline, Other], through: str
):
    pipeline, other = both
    other.put_rules(version_of({"Article Read": 10}, "other-1"))
    now, cand = time.time(), f"c-{uuid.uuid4().hex[:6]}"
    history = [_sent(cand, e, h, now) for e, h in
               (("Article Read", 20), ("Webinar Attended", 10), ("Page Viewed", 2))]  # fmt: skip
    pipeline.send([track(e, user_id=cand) for e in history])
    other.send([track(e, user_id=cand) for e in history])
    mine = _wait(lambda: pipeline.get(f"/v1/candidates/{cand}"), lambda v: v["sequence"] >= 3, "A")
    before = _wait(lambda: other.candidate(cand), lambda v: v["sequence"] >= 3, "B")
    # given a version with another half-life, other points and one event fewer (fewer scored
    # events: the rebuilt sequence alone would be below the old one): stored pending
    second = _doubled_half_life(version_of({"Article Read": 25}, "other-2"))
    second = second.replace('[events."Webinar Attended"]\npillar = "activity"\npoints = 12\n', "")
    assert "Webinar" not in second
    headers = {"Authorization": f"Bearer {other.admin}", "Content-Type": "application/toml"}
    answer = httpx.put(f"{pipeline.base}/v1/rules", content=second, headers=headers)
    assert answer.status_code == 201 and answer.json()["state"] == "pending", answer.text
    # when the tenant is rebuilt while the scorer runs (by the command, or by a scorer for the
    # admin API)
    if through == "command":
        assert asyncio.run(rebuild(pipeline, other.tenant)).seen >= 1
    else:
        done = requested(pipeline, other)
        assert (done["state"], done["generation"]) == ("activated", 1), done
    # then its history is the closed form over the new version, and it goes on past the old
    # sequences; the other tenant is untouched
    after = _wait(
        lambda: other.candidate(cand), lambda v: v["rulesVersion"] == "other-2", "rebuilt"
    )
    _exact(after, history, tomllib.loads(second))
    assert after["sequence"] >= before["sequence"], "carried over"
    later = _sent(cand, "Article Read", 0, time.time())
    other.send([track(later, user_id=cand)])
    last = _wait(
        lambda: other.candidate(cand), lambda v: v["sequence"] > after["sequence"], "next event"
    )
    _exact(last, [*history, later], tomllib.loads(second))
    records = asyncio.run(_changes_of(pipeline, other.tenant, cand, last["sequence"]))
    sequences = [r["sequence"] for r in records]
    assert sequences[-1] > max(sequences[:-1]), "the first record after the switch is past all"
    assert records[-1]["rulesVersion"] == "other-2"
    still = pipeline.get(f"/v1/candidates/{cand}").json()
    assert (still["sequence"], still["rulesVersion"]) == (mine["sequence"], "test-rules-1")
    _exact(still, history, tomllib.loads(TEST_RULES))


def _doubled_half_life(text: str) -> str:
    rules = tomllib.loads(text)
    old = f"half_life_days = {rules['half_life_days']}"
    assert old in text
    return text.replace(old, f"half_life_days = {rules['half_life_days'] * 2}")


async def _changes_of(pipeline: Pipeline, tenant: str, cand: str, sequence: int) -> list[dict]:
    def theirs(records: Any) -> list[dict]:
        values = [orjson.loads(r.value) for r in records if r.value]
        return [v for v in values if (v["tenantId"], v["candidateId"]) == (tenant, cand)]

    records = await read_topic(
        pipeline.kafka,
        pipeline.topics.scores_changed,
        until=lambda rs: any(v["sequence"] == sequence for v in theirs(rs)),
        timeout=60,
    )
    return theirs(records)
