"""Which job an event names, and job states out of a store script's reply (engagement.model.jobs.parse_job_entries): a changed
job, the current state a replay found, a job the candidate left; tier numbers clamped to the job
tiers. Pure."""

from __future__ import annotations

import pytest

from engagement.model.jobs import JobState, iso, job_id, job_of, parse_job_entries
from tests.unit.engagement.model.strategies import T0, interaction

TIERS = ("cold", "warm", "hot")


def entry(*fields: object) -> bytes:
    return "\x1f".join(str(f) for f in fields).encode()


def test_a_changed_job_carries_its_state_and_the_state_before() -> None:
    # given the entry of J-7 moved from warm (33) to hot (71) at the candidate's sequence 17
    changed = entry("U", "J-7", 1765020000.5, 40.5, 0, 12.25, 28.25, 3, 17, 2, 33, 71)
    # then
    assert parse_job_entries([changed], "u1", TIERS) == (
        JobState("J-7", "u1", 17, 1765020000.5, 40.5, 71, "hot", 33, "warm"),
    )


def test_a_replays_current_state_has_no_state_before() -> None:
    current = entry("R", "J-7", 1765020000.5, 40.5, 0, 12.25, 28.25, 2, 17, 40)
    assert parse_job_entries([current.decode()], "u1", TIERS) == (
        JobState("J-7", "u1", 17, 1765020000.5, 40.5, 40, "warm", None, None),
    )


def test_a_job_left_is_a_removed_state_at_the_sequence_of_the_drop() -> None:
    [state] = parse_job_entries([entry("D", "J 7/ä", 9)], "u1", TIERS)
    assert state == JobState("J 7/ä", "u1", 9) and state.removed


def test_tier_numbers_outside_the_job_tiers_are_clamped_to_them() -> None:
    # a store script of a template with more (or fewer) job tiers than this one
    above = entry("U", "J-1", 1.0, 2.0, 0, 0, 2.0, 5, 3, 0, 1, 1)
    below = entry("U", "J-2", 1.0, 2.0, 0, 0, 2.0, 0, 3, 4, 1, 1)
    [a, b] = parse_job_entries([above, below], "u1", TIERS)
    assert (a.tier, a.previous_tier) == ("hot", "cold")
    assert (b.tier, b.previous_tier) == ("cold", "hot")


@pytest.mark.parametrize(
    ("properties", "job"),
    [
        ({"jobId": "J-7", "job_id": "J-8"}, "J-7"),  # jobId first
        ({"job_id": "J-8"}, "J-8"),
        ({"jobId": None, "job_id": "J-8"}, "J-8"),  # null is absent
        ({"jobId": 42}, "42"),  # an integer, as its digits
        ({"jobId": "x" * 128}, "x" * 128),
        ({"jobId": "7"}, "7"),  # one character is enough
        ({"jobId": "J 7/ä"}, "J 7/ä"),  # any printable text
        ({"jobId": "x" * 129}, None),  # too long
        ({"jobId": ""}, None),
        ({"jobId": "J\x1f7"}, None),  # a control character
        ({"jobId": True}, None),  # a boolean is no integer here
        ({"jobId": 4.5}, None),
        ({"jobId": ["J-7"]}, None),
        ({"jobId": "", "job_id": "J-8"}, None),  # a jobId that names none: job_id is not read
        ({}, None),
    ],
)
def test_the_job_an_event_names(properties: dict[str, object], job: str | None) -> None:
    assert job_id(properties) == job
    event = interaction("m1", T0).model_copy(update={"properties": properties})
    assert job_of(event) == job


def test_instants_are_iso_8601_utc() -> None:
    assert iso(1765020000.5) == "2025-12-06T11:20:00.500000+00:00"
