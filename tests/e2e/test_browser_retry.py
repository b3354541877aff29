"""tracker.js keeps events while the ingest is down and delivers each exactly once when it is back."""

from __future__ import annotations

import contextlib
from collections import Counter

import orjson

from tests.support.kafka import read_topic
from tests.support.server import serve

READY = "window.tx && window.tx.VERSION"
QUEUED = "JSON.parse(localStorage.getItem('tx_q') || '[]')"


async def test_events_sent_while_ingest_is_down_arrive_once_when_it_is_back(
    stack, browser, kafka_bootstrap, topics
):
    # given a visitor on a page whose tracker talks to a second ingest on its own port
    with contextlib.ExitStack() as first:
        backup_url = first.enter_context(serve(stack.app(), ready_path="/readyz"))
        port = int(backup_url.rsplit(":", 1)[1])
        context = await browser.new_context()
        page = await context.new_page()
        await page.goto(f"{stack.site_url}/index.html")
        await page.wait_for_function(READY)
        await page.evaluate(
            f"tx.load('wk_site', {{host: '{backup_url}', autoPage: false, retryBase: 300, retryMax: 1500}})"
        )
    # when that ingest is down while the visitor views three jobs
    for job in ("J-1", "J-2", "J-3"):
        await page.evaluate(f"tx.track('Job Viewed', {{jobId: '{job}'}})")
    await page.evaluate("tx.flush()")
    await page.wait_for_function("+localStorage.getItem('tx_qa') >= 2")  # two failed attempts
    queued = {e["messageId"] for e in await page.evaluate(QUEUED) if e.get("event") == "Job Viewed"}
    # and it comes back on the same port
    with serve(stack.app(), port=port, ready_path="/readyz"):
        await page.wait_for_function(f"{QUEUED}.length === 0", timeout=60_000)
    await context.close()
    # then each job view is on Kafka exactly once, with the messageId it was given before the outage
    records = await read_topic(
        kafka_bootstrap,
        topics.interactions,
        until=lambda rs: queued <= {orjson.loads(r.value)["messageId"] for r in rs},
    )
    counts = Counter(orjson.loads(r.value)["messageId"] for r in records)
    assert len(queued) == 3
    assert {m: counts[m] for m in queued} == dict.fromkeys(queued, 1)
    assert all(n == 1 for n in counts.values())
