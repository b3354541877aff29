"""Fuzzing the running service: no input produces a 5xx other than the documented 503."""

from __future__ import annotations

import httpx
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode

from tests.integration.ingest.conftest import SERVER_KEY, basic

PER_OPERATION = settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    database=None,
)
FUZZ = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=False,
    database=None,
)


def _assert_no_server_error(status: int, detail: str) -> None:
    assert status < 500 or status == 503, detail


def test_schema_generated_requests_never_get_a_server_error(ingest_url):
    # given the service's own OpenAPI document and, per operation, requests generated from it
    schema = schemathesis.openapi.from_url(f"{ingest_url}/openapi.json")
    auth = basic(SERVER_KEY)
    for result in schema.get_all_operations():
        operation = result.ok()
        cases = st.one_of(
            operation.as_strategy(GenerationMode.POSITIVE, headers=auth),
            operation.as_strategy(GenerationMode.NEGATIVE, headers=auth),
            operation.as_strategy(GenerationMode.POSITIVE),
        )

        @PER_OPERATION
        @given(case=cases)
        def check(case) -> None:
            # when each is sent to the running server, then none gets a 5xx other than 503
            response = case.call(base_url=ingest_url, timeout=30)
            _assert_no_server_error(
                response.status_code, f"{case.method} {case.path}: {response.text}"
            )

        check()


ENDPOINTS = st.sampled_from(["/v1/track", "/v1/identify", "/v1/batch", "/v1/b"])
JSONISH = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4)
    ),
    max_leaves=20,
)
FIELDS = st.sampled_from(
    [
        "type",
        "userId",
        "anonymousId",
        "event",
        "timestamp",
        "sentAt",
        "context",
        "properties",
        "messageId",
        "previousId",
        "traits",
        "batch",
        "originalTimestamp",
        "groupId",
        "name",
    ]
)
ENVELOPES = st.dictionaries(FIELDS, JSONISH, max_size=8)
BODIES = st.one_of(
    st.binary(max_size=200),
    ENVELOPES.map(lambda e: httpx.Request("POST", "/", json=e).content),
    st.lists(ENVELOPES, min_size=1, max_size=5).map(
        lambda b: httpx.Request("POST", "/", json={"batch": b}).content
    ),
)


def test_arbitrary_bodies_and_envelopes_never_get_a_server_error(ingest_url):
    with httpx.Client(base_url=ingest_url, timeout=30) as http:

        @FUZZ
        @given(path=ENDPOINTS, body=BODIES, gzip_header=st.booleans())
        def check(path: str, body: bytes, gzip_header: bool) -> None:
            headers = {**basic(SERVER_KEY), "Content-Type": "application/json"}
            if gzip_header:
                headers["Content-Encoding"] = "gzip"
            response = http.post(path, content=body, headers=headers)
            _assert_no_server_error(response.status_code, f"{path} {body!r}: {response.text}")

        check()
