"""Property tests against the real Redis store: stored state equals the closed-form sum."""

from __future__ import annotations

import math
import random
import uuid

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engagement.model.records import Interaction
from engagement.model.score_views import Snapshot
from engagement.model.scoring import Profile, closed_form, event_points, raw_threshold, score_of
from engagement.store.redis_store import ScoreStore
from tests.unit.engagement.model.strategies import (
    RULES,
    T0,
    interaction,
    random_batches,
    scored_events,
)

# Every delivery of the test events is received within the dedupe window (8 days), as replays
# after a crash or rebalance are; the event times themselves spread over 10 days.
RECEIVED = T0 + 11 * 86400

REDIS_EXAMPLES = settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def close(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)


def assert_matches(state: Snapshot, expected: Profile) -> None:
    assert close(state.raw, expected.raw), (state.raw, expected.raw)
    for pillar, value in expected.pillars.items():
        assert close(state.pillars[pillar], value)
    for channel, value in expected.channels.items():
        assert close(state.channels[channel], value)
    assert state.score == score_of(state.raw, RULES.score_scale)
    near_boundary = any(
        close(expected.raw, raw_threshold(s, RULES.score_scale)) for s in range(2, 101)
    )
    if not near_boundary:
        assert state.score == score_of(expected.raw, RULES.score_scale)


def as_interactions(
    events: list, candidate: str, anonymous: str | None = None
) -> list[Interaction]:  # type: ignore[type-arg]
    return [
        interaction(
            f"{candidate}-{e.message_id}",
            e.t,
            event=e.event,
            channel=e.channel,
            user_id=None if anonymous else candidate,
            anonymous_id=anonymous,
            received=RECEIVED,
        )
        for e in events
    ]


@REDIS_EXAMPLES
@given(scored_events(), st.randoms(use_true_random=False))
async def test_stored_state_equals_closed_form_for_any_order_batching_and_duplication(
    store: ScoreStore,
    events: list,
    rnd: random.Random,  # type: ignore[type-arg]
) -> None:
    candidate = f"u{uuid.uuid4().hex[:8]}"
    items = as_interactions(events, candidate)
    delivered = items + rnd.sample(items, k=rnd.randint(0, len(items)))
    rnd.shuffle(delivered)
    for batch in random_batches(delivered, rnd, 5):
        await store.apply_batch(batch)
    scored = [e for e in (event_points(i, RULES) for i in items) if e]
    t_ref = max(e.t for e in scored)
    view = await store.get_candidate("acme", candidate, t_ref)
    assert view is not None
    assert_matches(view.state, closed_form(scored, t_ref, RULES))
    assert view.state.sequence == len(items)


@REDIS_EXAMPLES
@given(scored_events(), scored_events(), st.randoms(use_true_random=False))
async def test_merge_with_redirects_and_replays_equals_closed_form_of_all_events(
    store: ScoreStore,
    anon_events: list,
    user_events: list,
    rnd: random.Random,  # type: ignore[type-arg]
) -> None:
    user, anon = f"u{uuid.uuid4().hex[:8]}", f"a{uuid.uuid4().hex[:8]}"
    items = as_interactions(anon_events, anon, anonymous=anon) + as_interactions(user_events, user)
    identify = interaction(f"id-{user}", 0.0, kind="identify", user_id=user, anonymous_id=anon)
    delivered = [*items]
    delivered.insert(rnd.randint(0, len(delivered)), identify)
    replay = rnd.sample(delivered, k=rnd.randint(0, len(delivered)))
    for batch in random_batches(delivered + replay, rnd, 5):
        await store.apply_batch(batch)
    scored = [e for e in (event_points(i, RULES) for i in items) if e]
    t_ref = max(e.t for e in scored)
    view = await store.get_candidate("acme", user, t_ref)
    assert view is not None
    assert_matches(view.state, closed_form(scored, t_ref, RULES))
    assert view.merged_ids == (f"anon:{anon}",)


@REDIS_EXAMPLES
@given(scored_events(), st.floats(min_value=0, max_value=30 * 86400))
async def test_current_score_only_decays_between_events(
    store: ScoreStore,
    events: list,
    wait: float,  # type: ignore[type-arg]
) -> None:
    candidate = f"u{uuid.uuid4().hex[:8]}"
    await store.apply_batch(as_interactions(events, candidate))
    first = await store.get_candidate("acme", candidate, 0.0)
    assert first is not None and first.state.as_of is not None
    later = await store.get_candidate("acme", candidate, first.state.as_of + wait)
    assert later is not None
    assert later.state.score <= first.state.score
    assert 1 <= later.state.score <= 100
