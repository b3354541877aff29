"""tracker.js as served: small, versioned, cacheable."""

from __future__ import annotations

import gzip

from fastapi import FastAPI
from fastapi.testclient import TestClient

from services.ingest.tracker import TRACKER_VERSION, router
from services.ingest.tracker.router import SOURCE

MAX_GZIPPED_BYTES = 6 * 1024


def _client() -> TestClient:
    app = FastAPI()
    app.include_router(router)
    return TestClient(app)


def test_tracker_is_at_most_6_kib_gzipped():
    assert len(gzip.compress(SOURCE.read_bytes(), 9)) <= MAX_GZIPPED_BYTES


def test_tracker_is_served_as_javascript_with_its_version_and_cache_headers():
    response = _client().get("/v1/tracker.js")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/javascript")
    assert response.headers["x-tracker-version"] == TRACKER_VERSION
    assert "max-age=" in response.headers["cache-control"]
    assert f'var VERSION = "{TRACKER_VERSION}"' in response.text


def test_unchanged_tracker_answers_304_to_its_etag():
    client = _client()
    etag = client.get("/v1/tracker.js").headers["etag"]
    again = client.get("/v1/tracker.js", headers={"If-None-Match": etag})
    assert again.status_code == 304
    assert again.content == b""
