"""The score model at its edges (engagement.model.scoring): thresholds at 1 and past 100, the
crossing instant of an empty or unbounded sum, instants in any zone, what a scored event carries,
and the closed form's duplicates, caps and sums. Pure."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta, timezone

from hypothesis import example, given
from hypothesis import strategies as st
from pydantic_core import TzInfo

from engagement.model.scoring import (
    Profile,
    ScoredEvent,
    add_event,
    closed_form,
    crossing_time,
    epoch,
    event_points,
    merge_profiles,
    rank_key,
    raw_at_rank,
    raw_threshold,
    score_of,
)
from tests.unit.engagement.model.strategies import (
    RULES,
    T0,
    interaction,
    local_zone,
    scored_events,
    times,
)

H, SCALE = RULES.half_life_seconds, RULES.score_scale
DAY = 86400.0


def test_each_scores_threshold_is_the_least_raw_reaching_it_and_none_past_100() -> None:
    for score in range(2, 101):
        threshold = raw_threshold(score, SCALE)
        assert score_of(threshold * (1 + 1e-9), SCALE) >= score
        assert score_of(threshold * (1 - 1e-9), SCALE) == score - 1
    assert raw_threshold(1, SCALE) == -math.inf  # every raw scores at least 1
    assert raw_threshold(101, SCALE) == math.inf  # none scores more than 100


raws_with_limits = st.one_of(
    st.just(0.0), st.just(math.inf), st.floats(min_value=1e-3, max_value=1e9)
)


@given(raws_with_limits, times, times, st.integers(min_value=1, max_value=100))
@example(0.0, T0, T0, 2)
@example(math.inf, T0, T0, 100)
@example(0.0, T0, T0, 1)
def test_a_candidate_scores_at_least_s_exactly_until_its_crossing_time(
    raw: float, as_of: float, later: float, score: int
) -> None:
    # given a candidate of ``raw`` at ``as_of`` (0: an empty sum; inf: no bound), at any instant
    rank = rank_key(raw, as_of, H)
    crossed = crossing_time(rank, score, SCALE, H)
    # then its score then is at least ``score`` exactly before the crossing instant
    if not math.isclose(later, crossed, rel_tol=0, abs_tol=1e-3):
        assert (score_of(raw_at_rank(rank, later, H), SCALE) >= score) == (later < crossed)


def test_a_naive_instant_is_utc_whatever_the_machines_zone() -> None:
    with local_zone("IST-05:30"):
        assert epoch(datetime(2026, 11, 1, 12)) == datetime(2026, 11, 1, 12, tzinfo=UTC).timestamp()


@given(st.integers(min_value=-86399, max_value=86399), st.booleans())
def test_epoch_is_exact_in_any_fixed_offset_seen_first(offset: int, pydantic_zone: bool) -> None:
    # any offset (seconds included) a client may send, built as pydantic or the stdlib builds it
    zone = TzInfo(offset) if pydantic_zone else timezone(timedelta(seconds=offset))
    moment = datetime.fromtimestamp(T0, UTC).astimezone(zone)
    assert epoch(moment) == T0


def test_a_scored_event_carries_its_channel_and_when_it_was_received() -> None:
    scored = event_points(interaction("m1", T0, channel="ad", received=T0 + 5), RULES)
    assert scored is not None and (scored.channel, scored.received_at) == ("ad", T0 + 5)


def test_a_channel_the_rules_do_not_name_multiplies_by_one() -> None:
    scored = event_points(interaction("m1", T0, channel="podcast"), RULES)
    assert scored is not None and scored.points == RULES.events["Job Viewed"].points


@given(scored_events(), scored_events())
def test_merging_two_profiles_sums_their_pillars_exactly(left: list, right: list) -> None:  # type: ignore[type-arg]
    right = [e._replace(message_id="r" + e.message_id) for e in right]
    a, b = Profile(), Profile()
    for e in left:
        a = add_event(a, e, H)
    for e in right:
        b = add_event(b, e, H)
    merged = merge_profiles(a, b, H)
    assert merged.t_ref is not None
    expected = closed_form(left + right, merged.t_ref, RULES)
    for pillar, value in expected.pillars.items():
        assert math.isclose(merged.pillars[pillar], value, rel_tol=1e-9, abs_tol=1e-9)


def event(
    message_id: str, t: float, *, name: str = "Job Viewed", cap: int | None = None
) -> ScoredEvent:
    channel = "ad" if name == "Article Read" else "web"
    return ScoredEvent(message_id, name, "entrance", channel, 1.0, t, t, cap)


def weight(t_event: float, t: float) -> float:
    return float(2.0 ** (-(t - t_event) / H))


def test_the_closed_form_counts_a_duplicate_once_and_the_events_after_it() -> None:
    events = [event("m1", T0), event("m1", T0), event("m2", T0)]
    assert closed_form(events, T0, RULES).raw == 2.0


def test_daily_caps_count_per_event_and_utc_day_and_stop_no_other_event() -> None:
    # given a cap of 1 per day on "Page Viewed" and on "Brochure Read"
    day0, day1 = T0, T0 + DAY
    events = [
        event("p1", day0, name="Page Viewed", cap=1),
        event("p2", day0 + 1, name="Page Viewed", cap=1),  # over the cap
        event("j1", day0 + 2),  # uncapped, after a capped one
        event("b1", day0 + 3, name="Brochure Read", cap=1),  # another event: its own cap
        event("p3", day1, name="Page Viewed", cap=1),  # another day: its own cap
    ]
    # when the closed form sums them at day1, then only p2 is left out
    counted = [day0, day0 + 2, day0 + 3, day1]
    assert math.isclose(
        closed_form(events, day1, RULES).raw, sum(weight(t, day1) for t in counted), rel_tol=1e-12
    )


def test_the_closed_form_is_a_profile_at_t_with_its_channel_sums() -> None:
    events = [event("m1", T0), event("m2", T0, name="Article Read")]
    profile = closed_form(events, T0 + DAY, RULES)
    assert profile.t_ref == T0 + DAY
    assert profile.channels == {"web": 0.5, "ad": 0.5}
