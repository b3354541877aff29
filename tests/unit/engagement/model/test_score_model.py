"""The pure score model (docs/design.md §4): formula, bounds, decay, rank keys, merge."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic_core import TzInfo

from engagement.model.scoring import (
    Profile,
    add_event,
    closed_form,
    crossing_time,
    decay,
    epoch,
    event_points,
    merge_profiles,
    rank_bound,
    rank_key,
    raw_at_rank,
    raw_threshold,
    score_of,
)
from tests.unit.engagement.model.strategies import (
    RULES,
    T0,
    interaction,
    raws,
    scored_events,
    scores,
    times,
)

H = RULES.half_life_seconds
SCALE = RULES.score_scale


def close(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)


def test_score_of_follows_the_design_formula_on_known_values() -> None:
    assert score_of(0.0, 50.0) == 1
    assert score_of(-30.0, 50.0) == 1
    assert score_of(50.0, 50.0) == 63  # 100 * (1 - e^-1) = 63.2
    assert score_of(25.5, 50.0) == 40  # 39.95 rounds half up to 40
    assert score_of(1e6, 50.0) == 100


@given(raws)
def test_score_stays_between_1_and_100(raw: float) -> None:
    assert 1 <= score_of(raw, SCALE) <= 100


@given(raws, raws)
def test_score_is_monotone_in_raw(a: float, b: float) -> None:
    low, high = sorted((a, b))
    assert score_of(low, SCALE) <= score_of(high, SCALE)


@given(st.floats(min_value=0, max_value=1e6), st.floats(min_value=0, max_value=1e8))
def test_decay_of_a_positive_sum_is_monotone_over_time(value: float, dt: float) -> None:
    assert decay(value, dt, H) <= value
    assert decay(value, dt + 1000.0, H) <= decay(value, dt, H)


def test_one_half_life_halves_the_sum() -> None:
    assert decay(80.0, H, H) == 40.0


@given(scores, st.floats(min_value=0, max_value=1e6))
def test_raw_threshold_is_the_smallest_raw_reaching_the_score(score: int, raw: float) -> None:
    threshold = raw_threshold(score, SCALE)
    if not close(raw, threshold):
        assert (score_of(raw, SCALE) >= score) == (raw >= threshold)


@given(st.floats(min_value=1e-6, max_value=1e6), times, times, scores)
def test_rank_key_decides_the_score_at_any_later_instant(
    raw: float, t_ref: float, later: float, score: int
) -> None:
    now = max(t_ref, later)
    rank = rank_key(raw, t_ref, H)
    current = decay(raw, now - t_ref, H)
    bound = rank_bound(score, now, SCALE, H)
    if not math.isclose(rank, bound, rel_tol=0, abs_tol=1e-9):
        assert (score_of(current, SCALE) >= score) == (rank >= bound)
    assert math.isclose(raw_at_rank(rank, now, H), current, rel_tol=1e-6)


def test_rank_key_of_a_non_positive_sum_is_minus_infinity() -> None:
    assert rank_key(0.0, T0, H) == -math.inf
    assert rank_key(-3.0, T0, H) == -math.inf
    assert rank_bound(1, T0, SCALE, H) == -math.inf


def test_crossing_time_is_when_the_score_falls_below_the_threshold() -> None:
    rank = rank_key(100.0, T0, H)
    crossed = crossing_time(rank, 65, SCALE, H)
    assert score_of(decay(100.0, crossed - T0 - 1, H), SCALE) >= 65
    assert score_of(decay(100.0, crossed - T0 + 1, H), SCALE) < 65


@given(scored_events(), st.randoms())
def test_incremental_sum_equals_closed_form_in_any_order(events: list, rnd) -> None:  # type: ignore[no-untyped-def]
    rnd.shuffle(events)
    profile = Profile()
    for event in events:
        profile = add_event(profile, event, H)
    assert profile.t_ref is not None
    expected = closed_form(events, profile.t_ref, RULES)
    assert close(profile.raw, expected.raw)
    for pillar, value in expected.pillars.items():
        assert close(profile.pillars.get(pillar, 0.0), value)


@given(scored_events(), scored_events())
def test_merging_two_profiles_equals_the_closed_form_of_all_events(left: list, right: list) -> None:  # type: ignore[no-untyped-def]
    right = [e._replace(message_id="r" + e.message_id) for e in right]
    a, b = Profile(), Profile()
    for e in left:
        a = add_event(a, e, H)
    for e in right:
        b = add_event(b, e, H)
    merged = merge_profiles(a, b, H)
    assert merged.t_ref is not None
    expected = closed_form(left + right, merged.t_ref, RULES)
    assert close(merged.raw, expected.raw)
    for channel, value in expected.channels.items():
        assert close(merged.channels[channel], value)


def test_page_calls_score_as_page_viewed() -> None:
    scored = event_points(interaction("m1", T0, kind="page"), RULES)
    assert scored is not None and scored.event == "Page Viewed" and scored.points == 1


def test_unknown_events_are_not_scored() -> None:
    assert event_points(interaction("m1", T0, event="Lunch Eaten"), RULES) is None
    assert event_points(interaction("m1", T0, kind="identify"), RULES) is None


def test_points_are_multiplied_by_the_channel_multiplier() -> None:
    scored = event_points(interaction("m1", T0, channel="ad"), RULES)
    assert scored is not None and scored.points == pytest.approx(3.0)


def test_event_time_is_never_later_than_received_at() -> None:
    scored = event_points(interaction("m1", T0 + 3600, received=T0), RULES)
    assert scored is not None and scored.t == T0


def test_closed_form_counts_a_duplicate_message_once_and_applies_daily_caps() -> None:
    events = [event_points(interaction(f"m{i}", T0 + i, kind="page"), RULES) for i in range(5)]
    events.append(events[0])
    profile = closed_form([e for e in events if e], T0 + 10, RULES)
    assert profile.raw == pytest.approx(3.0, rel=1e-3)  # cap 3 per day


@given(
    st.datetimes(
        min_value=datetime(1900, 1, 1), max_value=datetime(2200, 1, 1), timezones=st.just(UTC)
    ),
    st.sampled_from(
        [UTC, timezone(timedelta(hours=-5)), TzInfo(0), TzInfo(19800), ZoneInfo("Europe/Berlin")]
    ),
)
def test_epoch_equals_timestamp_in_any_zone(instant: datetime, zone: tzinfo) -> None:
    moment = instant.astimezone(zone)
    assert epoch(moment) == moment.timestamp()
    assert epoch(instant.replace(tzinfo=None)) == instant.timestamp()  # naive = UTC
