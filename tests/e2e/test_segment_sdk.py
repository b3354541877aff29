"""The official Segment Python SDK, pointed at the service, gets its calls into Kafka intact."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import segment.analytics

from engagement.kafka.cloudevents import ce_type, headers_dict
from engagement.model.records import Interaction, format_time
from services.ingest.app import create_app
from services.ingest.settings import IngestSettings
from tests.support.kafka import read_topic
from tests.support.server import serve

WRITE_KEY = "wk_sdk"


@pytest.fixture
def tenant(unique: str) -> str:
    return f"sdk{unique}"


@pytest.fixture
def ingest_url(tmp_path: Path, tenant, kafka_bootstrap, redis_url, topic_prefix) -> Iterator[str]:
    sources = tmp_path / "sources.toml"
    sources.write_text(
        f'[[sources]]\nsource_id = "backend"\ntenant_id = "{tenant}"\n'
        f'channel = "ats"\nwrite_key = "{WRITE_KEY}"\n'
    )
    settings = IngestSettings(
        kafka_bootstrap_servers=kafka_bootstrap,
        kafka_topic_prefix=topic_prefix,
        kafka_topic_partitions=3,
        redis_url=redis_url,
        sources_file=sources,
    )
    with serve(create_app(settings), ready_path="/readyz") as url:
        yield url


def _ms(moment: datetime) -> datetime:
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


async def test_segment_python_sdk_calls_arrive_normalised_on_kafka(
    ingest_url, kafka_bootstrap, topics, tenant
):
    # given the official client in synchronous mode (a failed upload raises), pointed at the
    # service by its host only
    errors: list[Exception] = []
    client = segment.analytics.Client(
        WRITE_KEY, host=ingest_url, sync_mode=True, on_error=lambda e, _batch: errors.append(e)
    )
    an_hour_ago = _ms(datetime.now(UTC) - timedelta(hours=1))
    # when it sends track, page, identify and alias calls
    client.track(
        user_id="cand-7",
        event="Job Applied",
        properties={"jobId": "J-9", "channel": "referral"},
        timestamp=an_hour_ago,
        message_id="sdk-track",
    )
    client.page(anonymous_id="anon-7", name="Careers", properties={}, message_id="sdk-page")
    client.identify(
        user_id="cand-7", anonymous_id="anon-7", traits={"role": "dev"}, message_id="sdk-identify"
    )
    client.alias(previous_id="anon-7", user_id="cand-7", message_id="sdk-alias")
    assert errors == []
    # then each is on the interactions topic with its key, fields and CloudEvents headers
    records = await read_topic(kafka_bootstrap, topics.interactions, count=4)
    by_id = {Interaction.model_validate_json(r.value).messageId: r for r in records}
    assert set(by_id) == {"sdk-track", "sdk-page", "sdk-identify", "sdk-alias"}
    keys = {mid: r.key.decode() for mid, r in by_id.items()}
    assert keys == {
        "sdk-track": f"{tenant}:cand-7",
        "sdk-page": f"{tenant}:anon:anon-7",
        "sdk-identify": f"{tenant}:cand-7",
        "sdk-alias": f"{tenant}:cand-7",
    }
    track = Interaction.model_validate_json(by_id["sdk-track"].value)
    assert (track.type, track.event, track.userId) == ("track", "Job Applied", "cand-7")
    assert (track.tenantId, track.sourceId, track.channel) == (tenant, "backend", "referral")
    assert track.properties["jobId"] == "J-9"
    assert track.context["library"]["name"] == "analytics-python"
    assert track.originalTimestamp == an_hour_ago
    # the event time is corrected for the client clock: receivedAt - (sentAt - originalTimestamp)
    assert track.sentAt is not None
    expected = track.receivedAt - (track.sentAt - track.originalTimestamp)
    assert abs((track.timestamp - expected).total_seconds()) <= 0.002
    alias = Interaction.model_validate_json(by_id["sdk-alias"].value)
    assert (alias.type, alias.previousId, alias.userId) == ("alias", "anon-7", "cand-7")
    identify = Interaction.model_validate_json(by_id["sdk-identify"].value)
    assert (identify.traits, identify.anonymousId) == ({"role": "dev"}, "anon-7")
    headers = headers_dict(by_id["sdk-track"].headers)
    assert headers == {
        "ce_specversion": "1.0",
        "ce_id": "sdk-track",
        "ce_source": f"/tenants/{tenant}/sources/backend",
        "ce_type": ce_type("interaction.track"),
        "ce_time": format_time(track.timestamp),
        "ce_subject": "Job Applied",
        "content-type": "application/json",
    }
    assert headers_dict(by_id["sdk-page"].headers)["ce_subject"] == "Careers"
    assert headers_dict(by_id["sdk-alias"].headers)["ce_type"] == ce_type("interaction.alias")


async def test_segment_python_sdk_batches_gzipped_in_the_background(
    ingest_url, kafka_bootstrap, topics
):
    # given the client in its default background mode with gzip on
    errors: list[Exception] = []
    client = segment.analytics.Client(
        WRITE_KEY, host=ingest_url, gzip=True, on_error=lambda e, _batch: errors.append(e)
    )
    # when it queues several events and flushes them
    for number in range(5):
        client.track(user_id="cand-8", event="Article Read", message_id=f"bg-{number}")
    client.flush()
    client.shutdown()
    # then all of them arrive
    records = await read_topic(kafka_bootstrap, topics.interactions, count=5)
    assert errors == []
    assert sorted(Interaction.model_validate_json(r.value).messageId for r in records) == [
        f"bg-{n}" for n in range(5)
    ]
