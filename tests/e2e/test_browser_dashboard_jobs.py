"""The dashboard's job view in headless Chromium: a job's candidates per job tier and its top
candidates, a candidate's jobs, each opening the other; job and candidate ids with URL syntax."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime
from urllib.parse import quote

import httpx
import redis.asyncio as aioredis
from playwright.async_api import Page

from engagement.model.records import Interaction
from engagement.model.rules import load_rules
from engagement.store.redis_store import ScoreStore
from tests.e2e.pages.stack import READ_KEY, WebStack

JOB, OTHER = "J/7 ?#%", "J-8"
JOURNEYS = {  # candidate -> (job, event): for JOB one hot, one warm, one cold candidate
    "team/ada": [(JOB, "Application Submitted"), (JOB, "Contact Form Submitted"),
                 (JOB, "Job Alert Subscribed"), (OTHER, "Job Viewed")],
    "bo": [(JOB, "Application Submitted"), (OTHER, "Application Submitted")],
    "cy": [(JOB, "Job Viewed")],
    "di": [(OTHER, "Job Viewed")],
}  # fmt: skip


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
                properties={"jobId": job},
            )
            for candidate, steps in JOURNEYS.items()
            for job, event in steps
        ]
    )


async def _job_view(page: Page) -> tuple[dict[str, int], list[tuple[str, int]]]:
    counts = await page.eval_on_selector_all(
        "#job [data-job-tier-count]",
        "els => els.map(e => [e.dataset.jobTierCount, +e.textContent])",
    )
    rows = await page.eval_on_selector_all(
        "#job tr[data-candidate]",
        "rows => rows.map(r => [r.dataset.candidate, +r.children[2].textContent])",
    )
    return dict(counts), [tuple(r) for r in rows]


async def test_the_job_view_shows_a_jobs_tiers_and_top_candidates_and_a_candidates_jobs(
    stack, browser, redis_client, tmp_path
):
    # given candidates engaging with two jobs
    await _score(stack, redis_client)
    # when a recruiter opens the dashboard and types a job id
    page = await browser.new_page(viewport={"width": 1200, "height": 1400})
    refusals: list[str] = []
    page.on("console", lambda m: refusals.append(m.text) if "Content Security" in m.text else None)
    await page.goto(f"{stack.ingest_url}/dashboard#key={READ_KEY}")
    await page.wait_for_selector("body[data-loaded=true]")
    await page.fill("#job-input", JOB)
    await page.click("#job-form button")
    await page.wait_for_selector("#job[data-open]")
    job_counts, job_rows = await _job_view(page)
    # and opens a candidate from the job's list, then another job from the candidate's jobs
    await page.click("#job button.open >> text='team/ada'")
    await page.wait_for_selector("#candidate[data-open='team/ada']")
    jobs_shown = await page.eval_on_selector_all(
        "#candidate tr[data-job]",
        "rows => rows.map(r => [r.dataset.job, +r.children[1].textContent])",
    )
    screenshot = tmp_path / f"dashboard-jobs-{int(time.time())}.png"
    await page.screenshot(path=str(screenshot), full_page=True)
    await page.click(f"#candidate tr[data-job='{OTHER}'] button.open")
    await page.wait_for_selector(f"#job[data-open='{OTHER}']")
    other_counts, other_rows = await _job_view(page)
    await page.close()
    async with httpx.AsyncClient(
        base_url=stack.ingest_url, headers={"Authorization": f"Bearer {READ_KEY}"}
    ) as http:
        api_counts = (await http.get(f"/v1/jobs/{quote(JOB, safe='')}/tiers")).json()["tiers"]
        board = (await http.get(f"/v1/jobs/{quote(JOB, safe='')}/candidates")).json()
        ada_jobs = (await http.get(f"/v1/candidates/{quote('team/ada', safe='')}/jobs")).json()
    # then the job's tier counts are the read API's: one hot, one warm, one cold candidate
    assert job_counts == api_counts == {"cold": 1, "warm": 1, "hot": 1}
    # and its top candidates are its leaderboard, in order, with their scores for the job
    assert job_rows == [(c["candidateId"], c["score"]) for c in board["candidates"]]
    assert [candidate for candidate, _ in job_rows] == ["team/ada", "bo", "cy"]
    # and the candidate's jobs are the read API's, strongest first
    assert jobs_shown == [[j["jobId"], j["score"]] for j in ada_jobs["jobs"]]
    assert [job for job, _ in jobs_shown] == [JOB, OTHER]
    # and the other job opened from there lists its candidates (bo first: applied to it)
    assert sum(other_counts.values()) == 3
    assert [candidate for candidate, _ in other_rows][:1] == ["bo"]
    assert screenshot.stat().st_size > 0
    assert refusals == []
