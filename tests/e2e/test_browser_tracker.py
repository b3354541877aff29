"""tracker.js in headless Chromium: a visit across pages reaches Kafka under one anonymous id."""

from __future__ import annotations

import httpx
import orjson
import pytest
from playwright.async_api import Page

from tests.e2e.pages.stack import WRITE_KEY
from tests.support.kafka import read_topic

CAMPAIGN = {"source": "linkedin", "medium": "social", "name": "spring"}
UTM = "utm_source=linkedin&utm_medium=social&utm_campaign=spring"
SIMULATE_VIDEO = """() => {
  const v = document.getElementById("film");
  Object.defineProperty(v, "duration", {value: 120});
  Object.defineProperty(v, "currentTime", {value: 90});
  Object.defineProperty(v, "currentSrc", {value: "https://cdn.example/life-at-acme.mp4"});
  v.dispatchEvent(new Event("timeupdate"));
}"""
READY = "window.tx && window.tx.VERSION"


async def _visit(page: Page, url: str) -> None:
    await page.goto(url)
    await page.wait_for_function(READY)


async def _click_to(page: Page, selector: str) -> None:
    async with page.expect_navigation():
        await page.click(selector)
    await page.wait_for_function(READY)


async def _browse_to_thanks(page: Page, start: str) -> None:
    """Home → jobs → video (watched, brochure downloaded) → contact form submitted → thanks."""
    await _visit(page, start)
    await _click_to(page, "#to-jobs")
    await _click_to(page, "#to-video")
    await page.evaluate(SIMULATE_VIDEO)
    await page.click("#brochure")
    await _click_to(page, "#to-contact")
    await _click_to(page, "#send")


def _posts(stack) -> list[tuple[str, bytes]]:
    """What the ingest got, path and body (Playwright's request events miss some unload beacons)."""
    return list(stack.arrivals.posts)


def _names(records) -> set[str]:
    return {v.get("event") or f"{v['type']}:{v.get('properties', {}).get('path')}" for v in records}


async def test_a_visit_is_one_anonymous_candidate_that_identify_links(
    stack, browser, kafka_bootstrap, topics
):
    # given a careers site that loads tracker.js on every page
    context = await browser.new_context()
    page = await context.new_page()
    # when a visitor arrives from a campaign, clicks through, watches, downloads, writes and identifies
    await _browse_to_thanks(page, f"{stack.site_url}/index.html?{UTM}")
    await page.wait_for_load_state("networkidle")  # the page view is sent; the 10-min timer waits
    await page.evaluate("tx.identify('cand-ada', {email: 'ada@example.com'})")
    cookie = {c["name"]: c["value"] for c in await context.cookies()}["tx_aid"]
    await page.goto("about:blank")  # leaving the page: the rest goes by beacon
    expected = {
        "page:/index.html",
        "page:/jobs.html",
        "page:/video.html",
        "page:/contact.html",
        "page:/thanks.html",
        "Video Watched",
        "Content Downloaded",
        "Contact Form Submitted",
        "identify:None",
    }
    records = await read_topic(
        kafka_bootstrap,
        topics.interactions,
        timeout=60,
        until=lambda rs: expected <= _names(orjson.loads(r.value) for r in rs),
    )
    values = [orjson.loads(r.value) for r in records]
    await context.close()
    # then every event arrived under the visitor's first-party id, and identify links it
    assert expected <= _names(values)
    assert {v["anonymousId"] for v in values} == {cookie}
    [identify] = [v for v in values if v["type"] == "identify"]
    assert (identify["userId"], identify["traits"]["email"]) == ("cand-ada", "ada@example.com")
    home = next(v for v in values if v.get("properties", {}).get("path") == "/index.html")
    assert home["context"]["campaign"] == CAMPAIGN
    by_event = {v.get("event"): v for v in values}
    assert by_event["Video Watched"]["properties"]["title"] == "Life at Acme"
    assert by_event["Content Downloaded"]["properties"]["fileType"] == "pdf"
    assert by_event["Contact Form Submitted"]["properties"]["formId"] == "contact-form"
    # and the form's submission and the last page's identify (flush interval 10 min there) left
    # as beacons, on submit and on navigation
    beacons = set().union(
        *(_names(orjson.loads(b)["batch"]) for p, b in _posts(stack) if p == "/v1/b")
    )
    assert {"Contact Form Submitted", "identify:None"} <= beacons


@pytest.mark.parametrize("withheld", ["consent not given", "global privacy control"])
async def test_without_consent_nothing_is_sent_and_no_cookie_is_set(
    stack, browser, kafka_bootstrap, topics, withheld
):
    # given a site that asks for consent the visitor never gives (or a browser sending GPC)
    context = await browser.new_context()
    if withheld == "global privacy control":
        await context.add_init_script(
            "Object.defineProperty(navigator, 'globalPrivacyControl', {value: true})"
        )
    query = "?c=true" if withheld == "consent not given" else ""
    page = await context.new_page()
    # when the visitor browses the same journey
    await _browse_to_thanks(page, f"{stack.site_url}/index.html{query}")
    await page.evaluate("tx.identify('cand-bob')")
    stored = await page.evaluate("Object.keys(localStorage).filter(k => k.startsWith('tx_'))")
    await page.goto("about:blank")
    cookies = [c["name"] for c in await context.cookies() if c["name"].startswith("tx_")]
    await context.close()
    # then no id was stored and no cookie was set
    assert (stored, cookies) == ([], [])
    # and the topic holds only a server-side sentinel sent afterwards
    async with httpx.AsyncClient(base_url=stack.ingest_url, auth=(WRITE_KEY, "")) as http:
        sentinel = {"type": "track", "event": "Sentinel", "anonymousId": "sentinel"}
        assert (await http.post("/v1/track", json=sentinel)).status_code == 200
    records = await read_topic(
        kafka_bootstrap,
        topics.interactions,
        until=lambda rs: any(b"Sentinel" in r.value for r in rs),
    )
    assert [orjson.loads(r.value)["event"] for r in records] == ["Sentinel"]
    # and nothing left the browser: the ingest got only the sentinel
    assert [path for path, _ in _posts(stack)] == ["/v1/track"]


async def test_granting_consent_sends_the_held_page_view_and_sets_the_id(
    stack, browser, kafka_bootstrap, topics
):
    # given a consent-asking site where the visitor accepts analytics on the first page
    context = await browser.new_context()
    page = await context.new_page()
    await _visit(page, f"{stack.site_url}/index.html?c=true")
    assert await page.evaluate("document.cookie") == ""
    # when consent is given
    await page.evaluate("tx.consent({analytics: true})")
    # then the held page view is sent with the consent context under the new first-party id
    records = await read_topic(kafka_bootstrap, topics.interactions, count=1, timeout=30)
    cookie = {c["name"]: c["value"] for c in await context.cookies()}["tx_aid"]
    await context.close()
    [value] = [orjson.loads(r.value) for r in records]
    assert (value["type"], value["anonymousId"]) == ("page", cookie)
    assert value["context"]["consent"] == {"categoryPreferences": {"analytics": True}}
