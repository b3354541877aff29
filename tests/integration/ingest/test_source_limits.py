"""Per-source write limits, shared by every ingest replica through Redis: requests and distinct
identities per window; over either, 429 with Retry-After; a Redis that does not answer lets writes
through (a limit never refuses events the broker would take)."""

from __future__ import annotations

import httpx

from engagement.tools.localstack import free_port
from services.ingest.app import create_app
from services.ingest.settings import IngestSettings
from tests.integration.ingest.conftest import SERVER_KEY, WRITE_KEY, basic, ingest_settings
from tests.support.server import serve


def limited(settings: IngestSettings, **limits: object) -> IngestSettings:
    return settings.model_copy(update={"source_limit_window_seconds": 3600.0, **limits})


def track(anonymous_id: str) -> dict[str, object]:
    return {"type": "track", "event": "Job Viewed", "anonymousId": anonymous_id}


def post(base: str, key: str, *anonymous_ids: str) -> httpx.Response:
    body = {"batch": [track(a) for a in anonymous_ids]}
    return httpx.post(f"{base}/v1/batch", json=body, headers=basic(key), timeout=30)


def test_a_source_over_its_requests_per_window_is_answered_429_and_others_are_not(
    settings: IngestSettings,
) -> None:
    with serve(create_app(limited(settings, source_request_limit=3)), ready_path="/readyz") as base:
        # given a source allowed 3 write requests a window, when it sends a fourth
        answers = [post(base, WRITE_KEY, f"v{k}") for k in range(4)]
        # then the first three are accepted and the fourth is refused with a time to retry
        assert [a.status_code for a in answers] == [200, 200, 200, 429]
        assert answers[3].json()["error"]["code"] == "rate_limited"
        assert 1 <= int(answers[3].headers["retry-after"]) <= 3600
        # and another source of the same tenant still writes
        assert post(base, SERVER_KEY, "v9").status_code == 200
        metrics = httpx.get(f"{base}/metrics", timeout=10).text
        assert 'limit="requests",source="site"' in metrics


def test_a_source_writing_too_many_distinct_identities_is_answered_429(
    settings: IngestSettings,
) -> None:
    app = create_app(limited(settings, source_identity_limit=5))
    with serve(app, ready_path="/readyz") as base:
        # given a source allowed 5 distinct identities a window, which wrote 5
        assert post(base, WRITE_KEY, *[f"a{k}" for k in range(5)]).status_code == 200
        # when it writes for the same visitors again, then it is accepted
        assert post(base, WRITE_KEY, "a0", "a4").status_code == 200
        # and when it writes for new ones past the limit, it is refused
        refused = post(base, WRITE_KEY, "b0", "b1", "b2")
        assert refused.status_code == 429 and "identities" in refused.json()["error"]["message"]


def test_writes_go_through_unchecked_when_redis_does_not_answer(
    kafka_bootstrap: str, topic_prefix: str, sources_file
) -> None:
    # given ingest whose Redis is unreachable, with a limit of one request
    settings = ingest_settings(
        kafka_bootstrap_servers=kafka_bootstrap,
        kafka_topic_prefix=topic_prefix,
        redis_url=f"redis://127.0.0.1:{free_port()}/0",
        sources_file=sources_file,
        source_request_limit=1,
    )
    with serve(create_app(settings), ready_path="/readyz") as base:
        # when it takes writes, then they are accepted (Kafka has them) and counted unchecked
        assert [post(base, WRITE_KEY, f"u{k}").status_code for k in range(2)] == [200, 200]
        metrics = httpx.get(f"{base}/metrics", timeout=10).text
        assert 'limit="unchecked",source="site"' in metrics
