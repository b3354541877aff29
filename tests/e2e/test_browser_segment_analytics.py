"""Segment's own analytics.js (@segment/analytics-next, from npm) in headless Chromium sends
page/track/identify to the ingest, and nowhere else, when only pointed at it (docs/tracker.md).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import orjson
import pytest

from engagement.tools.localstack import free_port
from services.ingest.app import create_app
from tests.e2e.pages.analytics_next import ensure_bundle, site_app
from tests.e2e.pages.stack import WRITE_KEY, settings_for, sources_toml
from tests.support.kafka import read_topic
from tests.support.server import serve

UTM = "utm_source=linkedin&utm_medium=social&utm_campaign=spring"
CAMPAIGN = {"source": "linkedin", "medium": "social", "name": "spring"}
CALLS = """async () => {
  await analytics.page("Careers", {section: "jobs"});
  await analytics.track("Job Viewed", {jobId: "J-42"});
  await analytics.identify("cand-ada", {email: "ada@example.com"});
  return (await analytics.user()).anonymousId();
}"""
EXPECTED = {"page:Careers", "track:Job Viewed", "identify:None"}


@pytest.fixture(scope="session")
def bundle() -> Path:
    try:
        return ensure_bundle()
    except RuntimeError as exc:
        pytest.fail(str(exc), pytrace=False)


@pytest.fixture
def urls(
    bundle, unique, tmp_path, kafka_bootstrap, redis_url, topic_prefix, redis_prefix
) -> Iterator[tuple[str, str, str]]:
    """The ingest (the real app) and a careers site on another origin; yields both and the tenant."""
    tenant, site_port = f"acme{unique}", free_port()
    site_url = f"http://127.0.0.1:{site_port}"
    sources = tmp_path / "sources.toml"
    sources.write_text(sources_toml(tenant, site_url))
    settings = settings_for(
        kafka=kafka_bootstrap,
        redis=redis_url,
        topic_prefix=topic_prefix,
        redis_prefix=redis_prefix,
        sources=sources,
    )
    with serve(create_app(settings), ready_path="/readyz") as ingest_url:
        site = site_app(bundle=bundle, ingest_url=ingest_url, write_key=WRITE_KEY)
        with serve(site, port=site_port, ready_path="/careers.html"):
            yield ingest_url, site_url, tenant


def _name(value: dict) -> str:
    return f"{value['type']}:{value.get('event') or value.get('name')}"


SINGLE = {"/v1/p", "/v1/t", "/v1/i"}


@pytest.mark.parametrize(
    ("setup", "fetches_settings", "posted_to"),
    [("standard", True, SINGLE), ("batching", True, {"/v1/b"}), ("inline", False, SINGLE)],
)
async def test_analytics_next_pointed_at_the_ingest_delivers_page_track_and_identify(
    urls, browser, kafka_bootstrap, topics, setup, fetches_settings, posted_to
):
    ingest_url, site_url, tenant = urls
    # given a careers site that loads analytics-next pointed at the ingest (see load_arguments)
    context = await browser.new_context()
    requests: list[tuple[str, str]] = []
    context.on("request", lambda r: requests.append((r.method, r.url)))
    page = await context.new_page()
    await page.goto(f"{site_url}/careers.html?setup={setup}&{UTM}")
    # when the page calls page, track and identify
    anonymous_id = await page.evaluate(CALLS)
    records = await read_topic(
        kafka_bootstrap,
        topics.interactions,
        timeout=30,
        until=lambda rs: {_name(orjson.loads(r.value)) for r in rs} >= EXPECTED,
    )
    await context.close()
    # then the three events are on the interactions topic, keyed by candidate, in the tenant
    by_name = {_name(v): (r.key.decode(), v) for r in records for v in [orjson.loads(r.value)]}
    assert set(by_name) == EXPECTED
    assert by_name["page:Careers"][0] == f"{tenant}:anon:{anonymous_id}"
    assert by_name["track:Job Viewed"][0] == f"{tenant}:anon:{anonymous_id}"
    assert by_name["identify:None"][0] == f"{tenant}:cand-ada"
    for _key, value in by_name.values():
        assert (value["tenantId"], value["sourceId"], value["channel"]) == (tenant, "site", "web")
        assert value["anonymousId"] == anonymous_id
        assert value["context"]["library"]["name"] == "analytics.js"
        assert value["context"]["campaign"] == CAMPAIGN
        assert "writeKey" not in value
    assert by_name["track:Job Viewed"][1]["properties"] == {"jobId": "J-42"}
    assert by_name["identify:None"][1]["traits"] == {"email": "ada@example.com"}
    # and the browser only talked to the site and the ingest: settings, then the event paths
    ingest = urlsplit(ingest_url).netloc
    assert {urlsplit(url).netloc for _method, url in requests} == {
        urlsplit(site_url).netloc,
        ingest,
    }
    fetched = ("GET", f"{ingest_url}/v1/projects/{WRITE_KEY}/settings") in requests
    assert fetched is fetches_settings
    posted = {urlsplit(url).path for method, url in requests if method == "POST"}
    assert posted == posted_to
