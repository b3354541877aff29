"""The dashboard shows and opens candidates whose ids hold URL syntax ('/', '?', '#', '%', ' ')."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import redis.asyncio as aioredis

from engagement.model.records import Interaction
from engagement.model.rules import load_rules
from engagement.store.redis_store import ScoreStore
from tests.e2e.pages.stack import READ_KEY, WebStack

HOT_EVENTS = ["Application Submitted", "Contact Form Submitted", "Job Alert Subscribed"]
IDS = ["team/ada smith", "q?x=1#frag", "100%/z"]


async def _score(stack: WebStack, redis_client: aioredis.Redis) -> None:
    store = ScoreStore(
        redis_client, prefix=stack.settings.redis_key_prefix, rules=load_rules("config/rules.toml")
    )
    now = datetime.now(UTC)
    await store.apply_batch(
        [
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
            for candidate in IDS
            for event in HOT_EVENTS
        ]
    )


async def test_dashboard_shows_and_opens_candidates_whose_ids_hold_url_syntax(
    stack, browser, redis_client
):
    # given hot candidates whose ids hold '/', '?', '#', '%' and a space
    await _score(stack, redis_client)
    # when a recruiter opens the dashboard
    page = await browser.new_page(viewport={"width": 1200, "height": 900})
    await page.goto(f"{stack.ingest_url}/dashboard#key={READ_KEY}")
    await page.wait_for_selector("body[data-loaded=true]")
    rows = await page.eval_on_selector_all(
        "#hot-table tr[data-candidate]",
        "rows => rows.map(r => [r.dataset.candidate, r.querySelector('.why').textContent])",
    )
    # and opens one from the leaderboard, and another by typing its id
    await page.click("#hot-table button.open >> text='team/ada smith'")
    await page.wait_for_selector("#candidate[data-open]")
    from_list = (
        await page.get_attribute("#candidate", "data-open"),
        await page.inner_text("#candidate"),
    )
    await page.fill("#open-input", "100%/z")
    await page.click("#open-form button")
    await page.wait_for_selector("#candidate[data-open='100%/z']")
    typed = await page.inner_text("#candidate")
    await page.close()
    # then each is listed with the reasons for its score (its details were read)
    assert sorted(candidate for candidate, _ in rows) == sorted(IDS)
    assert all("Application Submitted" in why for _, why in rows), rows
    # and each opens on its own score and contributions
    assert from_list[0] == "team/ada smith"
    assert "score" in from_list[1] and "Job Alert Subscribed" in from_list[1]
    assert typed.startswith("100%/z: score")
