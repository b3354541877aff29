"""Hypothesis strategies and small builders shared by the scoring tests."""

from __future__ import annotations

import os
import random
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

from hypothesis import strategies as st

from engagement.model.records import Interaction
from engagement.model.rules import EventRule, Rules, TierRule
from engagement.model.scoring import ScoredEvent

T0 = 1_700_000_000.0
HALF_LIFE_DAYS = 1.0

RULES = Rules(
    version="test-1",
    half_life_days=HALF_LIFE_DAYS,
    score_scale=50.0,
    alert_tier="hot",
    tiers=(
        TierRule(name="cold", enter=1, exit=1),
        TierRule(name="warm", enter=40, exit=35),
        TierRule(name="hot", enter=70, exit=65),
    ),
    channels={"web": 1.0, "ad": 1.5},
    events={
        "Job Viewed": EventRule(pillar="entrance", points=2),
        "Article Read": EventRule(pillar="activity", points=4),
        "Application Submitted": EventRule(pillar="interaction", points=40),
        "Job Alert Unsubscribed": EventRule(pillar="interaction", points=-15),
        "Page Viewed": EventRule(pillar="entrance", points=1, daily_cap=3),
    },
)
UNCAPPED = ["Job Viewed", "Article Read", "Application Submitted", "Job Alert Unsubscribed"]

times = st.floats(min_value=T0, max_value=T0 + 10 * 86400, allow_nan=False)
raws = st.floats(min_value=-1e6, max_value=1e9, allow_nan=False)
scores = st.integers(min_value=1, max_value=100)


def at(t: float) -> datetime:
    return datetime.fromtimestamp(t, UTC)


def interaction(
    message_id: str,
    t: float,
    *,
    event: str = "Job Viewed",
    user_id: str | None = "u1",
    anonymous_id: str | None = None,
    channel: str = "web",
    kind: str = "track",
    received: float | None = None,
    tenant: str = "acme",
) -> Interaction:
    """A normalised interaction as ingest writes it."""
    return Interaction.model_validate(
        {
            "type": kind,
            "messageId": message_id,
            "tenantId": tenant,
            "sourceId": "site",
            "channel": channel,
            "receivedAt": at(received if received is not None else t),
            "timestamp": at(t),
            "userId": user_id,
            "anonymousId": anonymous_id,
            "event": event if kind == "track" else None,
        }
    )


def alias(
    message_id: str, previous: str, user: str, *, t: float = T0 + 1, tenant: str = "acme"
) -> Interaction:
    """``alias previousId=previous userId=user``: fold ``previous`` into ``user``."""
    return interaction(message_id, t, kind="alias", user_id=user, tenant=tenant).model_copy(
        update={"previousId": previous}
    )


@st.composite
def scored_events(draw: st.DrawFn, *, names: list[str] = UNCAPPED) -> list[ScoredEvent]:
    """1-12 uncapped events with distinct messageIds and arbitrary times and channels."""
    n = draw(st.integers(min_value=1, max_value=12))
    out = []
    for i in range(n):
        name = draw(st.sampled_from(names))
        channel = draw(st.sampled_from(["web", "ad"]))
        t = draw(times)
        rule = RULES.events[name]
        out.append(
            ScoredEvent(
                message_id=f"m{i}",
                event=name,
                pillar=rule.pillar,
                channel=channel,
                points=rule.points * RULES.multiplier(channel),
                t=t,
                received_at=t,
                daily_cap=rule.daily_cap,
            )
        )
    return out


def random_batches(
    items: list[Interaction], rnd: random.Random, largest: int
) -> list[list[Interaction]]:
    """``items`` cut into consecutive batches of 1 to ``largest`` (how a consumer may see them)."""
    out, i = [], 0
    while i < len(items):
        size = rnd.randint(1, largest)
        out.append(items[i : i + size])
        i += size
    return out


@contextmanager
def local_zone(tz: str) -> Iterator[None]:
    """The process' local time zone set to ``tz`` (a POSIX TZ string) for the block, so a test
    can show a result does not depend on the machine's zone (CI runs in UTC: it would not tell)."""
    before = os.environ.get("TZ")
    os.environ["TZ"] = tz
    time.tzset()
    try:
        yield
    finally:
        if before is None:
            del os.environ["TZ"]
        else:
            os.environ["TZ"] = before
        time.tzset()
