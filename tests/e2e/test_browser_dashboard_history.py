"""The dashboard's tier-count chart over the last 30 days in headless Chromium: one point per
tier and day sampled (engagement.store.tier_history), today's the counts now, gaps left open."""

from __future__ import annotations

import time
from collections import Counter
from datetime import timedelta

import httpx
import redis.asyncio as aioredis

from engagement.store import tier_history
from engagement.store.redis_keys import KeyLayout
from tests.e2e.pages.stack import READ_KEY, WebStack
from tests.e2e.test_browser_dashboard import _score

UNSAMPLED = (10, 11)  # days ago without a sample (no sweep ran)


def sampled(back: int) -> dict[str, int]:
    """The counts recorded ``back`` days ago."""
    return {"cold": 100 + 3 * back, "warm": 20 + back % 7, "hot": back % 4}


async def _history(stack: WebStack, redis_client: aioredis.Redis) -> dict[tuple[str, str], int]:
    """Record the samples of the 29 days before today; the expected (day, tier) -> count."""
    layout = KeyLayout(stack.settings.redis_key_prefix)
    key = tier_history.history_key(layout, stack.tenant)
    today = tier_history.utc_day(time.time())
    expected: dict[tuple[str, str], int] = {}
    for back in range(1, 30):
        if back in UNSAMPLED:
            continue
        day = today - timedelta(days=back)
        await tier_history.record(redis_client, key, day, time.time() - back * 86400, sampled(back))
        expected.update({(day.isoformat(), t): n for t, n in sampled(back).items()})
    return expected


async def test_the_tier_counts_of_the_last_30_days_are_charted_from_the_daily_samples(
    stack, browser, redis_client, tmp_path
):
    # given 27 of the previous 29 days sampled, and candidates scored now
    expected = await _history(stack, redis_client)
    await _score(stack, redis_client)
    # when a recruiter opens the dashboard
    page = await browser.new_page(viewport={"width": 1200, "height": 900})
    await page.goto(f"{stack.ingest_url}/dashboard#key={READ_KEY}")
    await page.wait_for_selector("body[data-loaded=true]")
    points = await page.eval_on_selector_all(
        "#history circle[data-day]",
        "cs => cs.map(c => [c.dataset.day, c.dataset.series, +c.dataset.count, +c.getAttribute('cy')])",
    )
    lines = await page.eval_on_selector_all(
        "#history polyline", "ls => ls.map(l => l.dataset.series)"
    )
    screenshot = tmp_path / f"dashboard-history-{int(time.time())}.png"
    await page.screenshot(path=str(screenshot), full_page=True)
    await page.close()
    async with httpx.AsyncClient(
        base_url=stack.ingest_url, headers={"Authorization": f"Bearer {READ_KEY}"}
    ) as http:
        now = (await http.get("/v1/tiers")).json()["tiers"]
    today = tier_history.utc_day(time.time()).isoformat()
    # then each sampled day has a point per tier at its count, and today's are the counts now
    shown = {(day, tier): count for day, tier, count, _ in points}
    assert len(points) == len(shown) == 28 * 3
    assert shown == expected | {(today, t): n for t, n in now.items()}
    # and a higher count stands higher; the two unsampled days break each tier's line in two
    by_height = sorted(points, key=lambda p: p[3])
    assert [p[2] for p in by_height] == sorted((p[2] for p in points), reverse=True)
    assert Counter(lines) == {"cold": 2, "warm": 2, "hot": 2}
    assert screenshot.stat().st_size > 0
