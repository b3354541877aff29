"""The read API refuses politely: 429 past a secret key's rate limit, 503 while Redis is down."""

from __future__ import annotations

import httpx

from engagement.tools.localstack import free_port
from services.ingest.app import create_app
from tests.integration.ingest.conftest import ADMIN_KEY, READ_KEY, ingest_settings
from tests.support.server import serve


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def test_a_read_key_past_its_limit_gets_429_with_retry_after(settings) -> None:
    # given a limit of 3 requests per minute per secret key
    app = create_app(settings.model_copy(update={"secret_key_rate_limit": 3}))
    with serve(app, ready_path="/readyz") as url:
        # when the read key makes a fourth request in the window
        answers = [httpx.get(f"{url}/v1/tiers", headers=bearer(READ_KEY)) for _ in range(4)]
        # then the first three are answered and the fourth is refused with a wait time
        assert [a.status_code for a in answers] == [200, 200, 200, 429]
        assert answers[3].json()["error"]["code"] == "rate_limited"
        assert 1 <= int(answers[3].headers["retry-after"]) <= 60
        # and another key keeps its own budget
        assert httpx.get(f"{url}/v1/tiers", headers=bearer(ADMIN_KEY)).status_code == 200


def test_the_read_api_answers_503_while_redis_is_down(
    kafka_bootstrap, topic_prefix, redis_prefix, sources_file
) -> None:
    # given an ingest whose Redis does not answer
    settings = ingest_settings(
        kafka_bootstrap_servers=kafka_bootstrap,
        kafka_topic_prefix=topic_prefix,
        redis_url=f"redis://127.0.0.1:{free_port()}/0",
        redis_key_prefix=redis_prefix,
        sources_file=sources_file,
    )
    with serve(create_app(settings), ready_path="/readyz") as url:
        # when a recruiter reads scores
        answer = httpx.get(f"{url}/v1/candidates/cand-1", headers=bearer(READ_KEY))
    # then the answer says to retry, not that the server broke
    assert answer.status_code == 503
    assert answer.headers["retry-after"] == "5"
    assert answer.json()["error"]["code"] == "redis_unavailable"
