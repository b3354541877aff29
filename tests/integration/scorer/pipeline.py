"""A running pipeline for scorer tests: ingest (in-thread uvicorn) + scorer (subprocess)."""

from __future__ import annotations

import contextlib
import re
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx

from engagement.kafka.topics import Topics
from engagement.model.records import format_time
from services.ingest.app import create_app
from services.ingest.settings import IngestSettings
from tests.integration.scorer.expected import TEST_RULES, Sent, load_toml
from tests.integration.scorer.harness import ScorerProcess, new_port, running_scorer, scorer_env
from tests.support.server import serve
from tests.support.services import sync_client

SOURCES = """
[[sources]]
source_id = "site"
tenant_id = "{tenant}"
channel = "web"
write_key = "wk_{uid}"
allowed_origins = []
consent_required = false

[[read_keys]]
key = "rk_{uid}"
tenant_id = "{tenant}"

[[admin_keys]]
key = "ak_{uid}"
tenant_id = "{tenant}"
"""


@dataclass
class Pipeline:
    base: str
    tenant: str
    write_key: str
    read_key: str
    admin_key: str
    topics: Topics
    redis_prefix: str
    rules: dict[str, Any]
    scorer: ScorerProcess
    kafka: str
    redis_url: str
    env: dict[str, str]

    def send(self, events: list[dict[str, Any]]) -> dict[str, Any]:
        """POST /v1/batch with the write key; asserts every event was accepted."""
        response = httpx.post(
            f"{self.base}/v1/batch", json={"batch": events}, auth=(self.write_key, ""), timeout=30
        )
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        assert body["accepted"] == len(events), body
        return body

    def get(self, path: str, *, key: str | None = None) -> httpx.Response:
        headers = {"Authorization": f"Bearer {key or self.read_key}"}
        return httpx.get(f"{self.base}{path}", headers=headers, timeout=30)

    def delete(self, path: str) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.admin_key}"}
        return httpx.delete(f"{self.base}{path}", headers=headers, timeout=30)

    def wait_for(
        self, path: str, done: Callable[[httpx.Response], bool], timeout: float = 90.0
    ) -> httpx.Response:
        """Poll GET ``path`` until ``done(response)``; returns the last response either way."""
        deadline = time.monotonic() + timeout
        response = self.get(path)
        while not done(response) and time.monotonic() < deadline:
            time.sleep(0.2)
            response = self.get(path)
        return response


def counted(pipeline: Pipeline, outcome: str | None = None) -> float:
    """Records the scorer counted (``engagement_scorer_events_total``), of one outcome or all."""
    label = f'outcome="{outcome}",' if outcome else ""
    pattern = rf"^engagement_scorer_events_total\{{{label}[^}}]*\}} (\S+)$"
    return sum(float(v) for v in re.findall(pattern, pipeline.scorer.metrics(), re.M))


def track(
    sent: Sent, *, user_id: str | None = None, anonymous_id: str | None = None
) -> dict[str, Any]:
    """A Segment track call for a sent event (channel via properties.channel)."""
    event: dict[str, Any] = {
        "type": "track",
        "event": sent.event,
        "messageId": sent.message_id,
        "timestamp": format_time(sent.at),
        "properties": {"channel": sent.channel},
    }
    if user_id:
        event["userId"] = user_id
    if anonymous_id:
        event["anonymousId"] = anonymous_id
    return event


def at(moment: float) -> datetime:
    from datetime import UTC

    return datetime.fromtimestamp(round(moment, 3), UTC)


@contextlib.contextmanager
def running_pipeline(
    kafka: str, redis_url: str, workdir: Path, *, more_sources: str = ""
) -> Iterator[Pipeline]:
    """Start ingest and one scorer on fresh topics, keys and a fresh tenant; clean Redis after.
    ``more_sources``: more of sources.toml (another tenant's keys)."""
    uid = uuid.uuid4().hex[:10]
    tenant, topic_prefix, redis_prefix = f"acme{uid}", f"t{uid}.", f"test:{uid}:"
    rules_file = workdir / "rules.toml"
    rules_file.write_text(TEST_RULES)
    sources_file = workdir / "sources.toml"
    sources_file.write_text(SOURCES.format(tenant=tenant, uid=uid) + more_sources)
    settings = IngestSettings(
        sources_file=sources_file,
        rules_file=rules_file,
        kafka_bootstrap_servers=kafka,
        kafka_topic_prefix=topic_prefix,
        kafka_topic_partitions=3,
        redis_url=redis_url,
        redis_key_prefix=redis_prefix,
    )
    env = scorer_env(
        kafka=kafka,
        redis_url=redis_url,
        topic_prefix=topic_prefix,
        redis_prefix=redis_prefix,
        rules_file=rules_file,
        port=new_port(),
    )
    with (
        serve(create_app(settings), ready_path="/readyz") as base,
        running_scorer(env) as scorer,
    ):
        try:
            yield Pipeline(
                base, tenant, f"wk_{uid}", f"rk_{uid}", f"ak_{uid}", Topics(topic_prefix),
                redis_prefix, load_toml(rules_file), scorer, kafka, redis_url, env,
            )  # fmt: skip
        finally:
            _delete_keys(redis_url, redis_prefix)


def _delete_keys(redis_url: str, prefix: str) -> None:
    client = sync_client(redis_url)
    try:
        for key in client.scan_iter(match=f"{prefix}*", count=1000):
            client.delete(key)
    finally:
        client.close()
