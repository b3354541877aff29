"""Two tenants, two templates (issue 23, item 1): the same events score differently, each
exactly as the closed form over its own template, and a new version applies to the events a
running scorer scores after it read it, within seconds, without a restart."""

from __future__ import annotations

import time
import tomllib
import uuid
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import httpx
import pytest

from tests.integration.scorer.expected import TEST_RULES, Sent, expected_raw, score_of
from tests.integration.scorer.pipeline import Pipeline, at, running_pipeline, track

OTHER = "other{uid}"
MORE_SOURCES = """
[[sources]]
source_id = "other-site"
tenant_id = "{tenant}"
channel = "web"
write_key = "wk_other_{uid}"
allowed_origins = []

[[read_keys]]
key = "rk_other_{uid}"
tenant_id = "{tenant}"

[[admin_keys]]
key = "ak_other_{uid}"
tenant_id = "{tenant}"
"""


def version_of(points: dict[str, float], version: str) -> str:
    """TEST_RULES as ``version`` with other points for some events (same half-life)."""
    text = TEST_RULES.replace('version = "test-rules-1"', f'version = "{version}"')
    for event, value in points.items():
        head = f'[events."{event}"]\n'
        start = text.index(head)
        line = text.index("points = ", start)
        end = text.index("\n", line)
        text = text[:line] + f"points = {value}" + text[end:]
    return text


class Other:
    """The second tenant's keys on the same ingest."""

    def __init__(self, pipeline: Pipeline, uid: str) -> None:
        self.pipeline, self.tenant = pipeline, OTHER.format(uid=uid)
        self.write, self.read, self.admin = f"wk_other_{uid}", f"rk_other_{uid}", f"ak_other_{uid}"

    def send(self, events: list[dict[str, Any]]) -> None:
        url = f"{self.pipeline.base}/v1/batch"
        answer = httpx.post(url, json={"batch": events}, auth=(self.write, ""), timeout=30)
        assert answer.status_code == 200 and answer.json()["accepted"] == len(events), answer.text

    def put_rules(self, text: str) -> None:
        headers = {"Authorization": f"Bearer {self.admin}", "Content-Type": "application/toml"}
        answer = httpx.put(f"{self.pipeline.base}/v1/rules", content=text, headers=headers)
        assert answer.status_code == 201 and answer.json()["state"] == "active", answer.text

    def candidate(self, cand: str) -> httpx.Response:
        return self.pipeline.get(f"/v1/candidates/{cand}", key=self.read)


@pytest.fixture
def two(kafka_bootstrap: str, redis_url: str, tmp_path) -> Iterator[tuple[Pipeline, Other]]:
    uid = uuid.uuid4().hex[:8]
    more = MORE_SOURCES.format(tenant=OTHER.format(uid=uid), uid=uid)
    with running_pipeline(kafka_bootstrap, redis_url, tmp_path, more_sources=more) as pipeline:
        yield pipeline, Other(pipeline, uid)


def _sent(cand: str, event: str, hours_ago: float, now: float) -> Sent:
    return Sent(uuid.uuid4().hex, cand, event, "web", at(now - hours_ago * 3600))


def _wait(read: Any, done: Any, what: str, timeout: float = 60.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        answer = read()
        if answer.status_code == 200 and done(answer.json()):
            return dict(answer.json())
        time.sleep(0.1)
    raise AssertionError(f"not within {timeout}s: {what}")


def _in_force(other: Other, version: str) -> float:
    """Send probe events to the other tenant until one is scored under ``version``; seconds."""
    started, probe = time.monotonic(), f"probe-{uuid.uuid4().hex[:6]}"
    deadline = started + 60
    while time.monotonic() < deadline:
        other.send([track(_sent(probe, "Page Viewed", 0, time.time()), user_id=probe)])
        answer = other.candidate(probe)
        if answer.status_code == 200 and answer.json()["rulesVersion"] == version:
            return time.monotonic() - started
        time.sleep(0.2)
    raise AssertionError(f"{version} not in force within 60 s")


def _exact(view: dict[str, Any], events: list[Sent], rules: dict[str, Any]) -> None:
    as_of = datetime.fromisoformat(view["asOf"]).timestamp()
    raw = expected_raw(events, rules, as_of)
    assert view["raw"] == pytest.approx(raw, rel=1e-9)
    assert view["score"] == score_of(raw, rules["score_scale"])


def test_two_tenants_score_the_same_events_each_under_its_own_template_and_changes_apply_live(
    two: tuple[Pipeline, Other],
):
    pipeline, other = two

    first = version_of({"Article Read": 10, "Webinar Attended": 30}, "other-1")
    other.put_rules(first)
    picked = _in_force(other, "other-1")
    # given the same history sent to both tenants
    now, cand = time.time(), f"c-{uuid.uuid4().hex[:6]}"
    history = [_sent(cand, e, h, now) for e, h in
               (("Article Read", 20), ("Webinar Attended", 10), ("Page Viewed", 2))]  # fmt: skip
    pipeline.send([track(e, user_id=cand) for e in history])
    other.send([track(e, user_id=cand) for e in history])
    # then each scores it as the closed form over its own template
    mine = _wait(lambda: pipeline.get(f"/v1/candidates/{cand}"), lambda v: v["sequence"] >= 3, "A")
    theirs = _wait(lambda: other.candidate(cand), lambda v: v["sequence"] >= 3, "B")
    _exact(mine, history, tomllib.loads(TEST_RULES))
    _exact(theirs, history, tomllib.loads(first))
    assert (mine["rulesVersion"], theirs["rulesVersion"]) == ("test-rules-1", "other-1")
    assert theirs["score"] > mine["score"]
    # when the other tenant sets a new version, the running scorer applies it to new events
    second = version_of({"Article Read": 20, "Webinar Attended": 30}, "other-2")
    other.put_rules(second)
    switched = _in_force(other, "other-2")
    later = _sent(cand, "Article Read", 0, time.time())
    other.send([track(later, user_id=cand)])
    pipeline.send([track(later, user_id=cand)])
    theirs = _wait(lambda: other.candidate(cand), lambda v: v["sequence"] >= 4, "B's new event")
    mine = _wait(lambda: pipeline.get(f"/v1/candidates/{cand}"), lambda v: v["sequence"] >= 4, "A")
    # then the earlier events keep the points in force when they were scored, the new one has
    # the new version's, and the first tenant is untouched
    rescored = [*history, Sent(later.message_id, cand, "Article Read (v2)", "web", later.at)]
    rules = tomllib.loads(first)
    rules["events"]["Article Read (v2)"] = {"pillar": "activity", "points": 20}
    _exact(theirs, rescored, rules)
    _exact(mine, [*history, later], tomllib.loads(TEST_RULES))
    assert theirs["rulesVersion"] == "other-2" and mine["rulesVersion"] == "test-rules-1"
    print(f"\nversion in force after the PUT: first {picked:.2f} s, second {switched:.2f} s")
