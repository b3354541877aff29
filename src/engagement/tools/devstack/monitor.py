"""What the live view shows: readiness, events/s by channel, consumer lag, candidates per tier."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import httpx
from prometheus_client.parser import text_string_to_metric_families

from engagement.tools.devstack.demo import DemoStats
from engagement.tools.devstack.stack import Stack


@dataclass(frozen=True)
class Snapshot:
    """One refresh of the view."""

    at: float
    accepted: dict[str, float] = field(default_factory=dict)  # cumulative, by channel (or source)
    rates: dict[str, float] = field(default_factory=dict)  # events/s, by channel
    lag: float | None = None
    tiers: dict[str, int] = field(default_factory=dict)
    services: dict[str, str] = field(default_factory=dict)
    rejected: int = 0
    failed_requests: int = 0
    last_error: str = ""

    @property
    def accepted_total(self) -> int:
        return int(sum(self.accepted.values()))


def rates_between(
    previous: Snapshot | None, accepted: dict[str, float], now: float
) -> dict[str, float]:
    """Return events/s per key since the previous snapshot (0 for the first one)."""
    if previous is None or now <= previous.at:
        return dict.fromkeys(accepted, 0.0)
    span = now - previous.at
    return {k: max(0.0, (v - previous.accepted.get(k, 0.0)) / span) for k, v in accepted.items()}


def samples(text: str, name: str) -> list[tuple[dict[str, str], float]]:
    """Return the (labels, value) samples of one metric family in an exposition text."""
    out = []
    for family in text_string_to_metric_families(text):
        out += [(s.labels, s.value) for s in family.samples if s.name == name]
    return out


async def _get_text(client: httpx.AsyncClient, url: str) -> str | None:
    try:
        response = await client.get(url, timeout=2.0)
    except httpx.HTTPError:
        return None
    return response.text if response.status_code == 200 else None


async def _readiness(client: httpx.AsyncClient, stack: Stack) -> dict[str, str]:
    states = {}
    for name in ("ingest", "scorer", "notifier"):
        try:
            response = await client.get(stack.web_url(name) + "/readyz", timeout=2.0)
            states[name] = (
                "ready" if response.status_code == 200 else f"not ready ({response.status_code})"
            )
        except httpx.HTTPError:
            states[name] = "starting"
    return states


async def collect(
    client: httpx.AsyncClient,
    stack: Stack,
    demo: DemoStats | None,
    previous: Snapshot | None,
    *,
    read_key: str,
) -> Snapshot:
    """Return a fresh snapshot (metrics that cannot be read yet are left empty)."""
    now = time.monotonic()
    scorer = await _get_text(client, stack.web_url("scorer") + "/metrics") or ""
    lag_samples = samples(scorer, "engagement_scorer_consumer_lag")
    tiers = await tier_counts(client, stack, read_key=read_key)
    if demo is not None:
        accepted = {k: float(v) for k, v in demo.accepted.items()}
    else:
        ingest = await _get_text(client, stack.ingest_url + "/metrics") or ""
        accepted = {}
        for labels, value in samples(ingest, "engagement_ingest_events_total"):
            if labels.get("outcome") == "accepted":
                accepted[labels.get("source", "?")] = (
                    accepted.get(labels.get("source", "?"), 0.0) + value
                )
    return Snapshot(
        at=now,
        accepted=accepted,
        rates=rates_between(previous, accepted, now),
        lag=sum(v for _, v in lag_samples) if lag_samples else None,
        tiers=dict(tiers),
        services=await _readiness(client, stack),
        rejected=demo.rejected if demo else 0,
        failed_requests=demo.failed_requests if demo else 0,
        last_error=demo.last_error if demo else "",
    )


async def tier_counts(client: httpx.AsyncClient, stack: Stack, *, read_key: str) -> dict[str, int]:
    """Return candidates per tier of the read key's tenant ({} if unavailable)."""
    try:
        response = await client.get(
            stack.ingest_url + "/v1/tiers",
            headers={"Authorization": f"Bearer {read_key}"},
            timeout=3.0,
        )
    except httpx.HTTPError:
        return {}
    if response.status_code != 200:
        return {}
    return {str(k): int(v) for k, v in response.json().get("tiers", {}).items()}


async def breakdown(
    client: httpx.AsyncClient, stack: Stack, *, read_key: str, candidate: str
) -> dict[str, Any]:
    """Return the candidate's current score view from the read API ({} if unavailable)."""
    url = f"{stack.ingest_url}/v1/candidates/{quote(candidate, safe='')}"
    try:
        response = await client.get(
            url, headers={"Authorization": f"Bearer {read_key}"}, timeout=3.0
        )
    except httpx.HTTPError:
        return {}
    return dict(response.json()) if response.status_code == 200 else {}


def describe_breakdown(view: dict[str, Any]) -> str:
    """Return 'score 91 (entrance 9, activity 38, interaction 75; web 100, ad 22)'."""
    if not view:
        return "breakdown unavailable"
    pillars = ", ".join(f"{k} {v:.0f}" for k, v in view.get("pillars", {}).items())
    channels = ", ".join(f"{k} {v:.0f}" for k, v in view.get("channels", {}).items())
    return f"score {view.get('score')} ({pillars}; {channels})"
