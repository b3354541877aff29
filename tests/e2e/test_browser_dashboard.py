"""The recruiter dashboard in headless Chromium renders real scores from Redis."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime

import httpx
import redis.asyncio as aioredis

from engagement.model.records import Interaction
from engagement.model.rules import load_rules
from engagement.store.redis_store import ScoreStore
from tests.e2e.pages.stack import READ_KEY, WebStack

JOURNEYS = {  # candidate -> events: two hot, one warm, one cold under the default rules
    "cand-hot-1": ["Application Submitted", "Contact Form Submitted", "Job Alert Subscribed"],
    "cand-hot-2": ["Application Submitted", "Application Started", "Newsletter Subscribed"],
    "cand-warm": ["Application Submitted"],
    "cand-cold": ["Page Viewed"],
}


async def _score(stack: WebStack, redis_client: aioredis.Redis) -> None:
    store = ScoreStore(
        redis_client, prefix=stack.settings.redis_key_prefix, rules=load_rules("config/rules.toml")
    )
    now = datetime.now(UTC)
    interactions = [
        Interaction(
            type="track",
            messageId=str(uuid.uuid4()),
            tenantId=stack.tenant,
            sourceId="site",
            channel="web",
            receivedAt=now,
            timestamp=now,
            userId=candidate,
            event=event,
        )
        for candidate, events in JOURNEYS.items()
        for event in events
    ]
    await store.apply_batch(interactions)


async def test_dashboard_shows_the_hot_candidates_and_the_tier_counts_of_the_read_api(
    stack, browser, redis_client, tmp_path
):
    # given candidates scored into Redis by the scoring store
    await _score(stack, redis_client)
    # when a recruiter opens the dashboard with the read key
    page = await browser.new_page(viewport={"width": 1200, "height": 900})
    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))
    refusals: list[str] = []
    page.on("console", lambda m: refusals.append(m.text) if "Content Security" in m.text else None)
    await page.goto(f"{stack.ingest_url}/dashboard#key={READ_KEY}")
    await page.wait_for_selector("body[data-loaded=true]")
    screenshot = tmp_path / f"dashboard-{int(time.time())}.png"
    await page.screenshot(path=str(screenshot), full_page=True)
    hot = await page.eval_on_selector_all(
        "#hot-table tr[data-candidate]", "rows => rows.map(r => r.dataset.candidate)"
    )
    shown = await page.eval_on_selector_all(
        "[data-tier-count]", "els => els.map(e => [e.dataset.tierCount, +e.textContent])"
    )
    why = await page.inner_text("#hot-table")
    url_after = page.url
    await page.close()
    async with httpx.AsyncClient(
        base_url=stack.ingest_url, headers={"Authorization": f"Bearer {READ_KEY}"}
    ) as http:
        tiers = (await http.get("/v1/tiers")).json()["tiers"]
    # then the hot leaderboard lists exactly the hot candidates, with the reasons for their score
    assert sorted(hot) == ["cand-hot-1", "cand-hot-2"]
    assert "Application Submitted" in why
    # and its tier counts equal GET /v1/tiers; the screenshot is kept; the key left the URL
    assert dict(shown) == tiers
    assert screenshot.stat().st_size > 0
    assert "key=" not in url_after
    # and the key never went to the server in a URL (access logs), and the page's CSP held
    assert requested and not [url for url in requested if READ_KEY in url]
    assert refusals == []
