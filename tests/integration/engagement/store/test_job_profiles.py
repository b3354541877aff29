"""(Candidate, job) profiles in the real Redis store: exact, idempotent, bounded, ranked per job,
carried by identity merges and gone with an erasure."""

from __future__ import annotations

import math
import random
import uuid

import pytest
import redis.asyncio as aioredis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engagement.model.jobs import JobState, JobView
from engagement.model.records import Interaction
from engagement.model.rules import Rules
from engagement.model.scoring import closed_form, event_points, score_of
from engagement.store.redis_store import ScoreStore
from tests.unit.engagement.model.strategies import RULES, T0, UNCAPPED, alias, interaction

H = RULES.half_life_seconds
DAY = 86400.0


def job_event(
    message_id: str,
    t: float,
    job: str | int | None,
    *,
    event: str = "Job Viewed",
    user: str | None = "u1",
    anonymous: str | None = None,
    field: str = "jobId",
    received: float | None = None,
) -> Interaction:
    """A track event naming ``job`` in its properties (none when ``job`` is None)."""
    base = interaction(
        message_id, t, event=event, user_id=user, anonymous_id=anonymous, received=received
    )
    return base.model_copy(update={"properties": {} if job is None else {field: job}})


def close(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)


async def job_profile(store: ScoreStore, candidate: str, job: str, now: float) -> JobView:
    """The candidate's profile for ``job`` as read at ``now``."""
    view = await store.candidate_jobs("acme", candidate, now)
    assert view is not None
    found = {j.job_id: j for j in view.jobs}
    assert job in found, (job, list(found))
    return found[job]


async def test_event_naming_a_job_scores_into_the_candidate_and_the_job(store: ScoreStore) -> None:
    [outcome] = await store.apply_batch([job_event("m1", T0, "J-7", event="Application Submitted")])
    assert outcome.after is not None and outcome.after.score == 55
    [state] = outcome.jobs
    assert (state.job_id, state.candidate_id, state.sequence) == ("J-7", "u1", 1)
    assert (state.score, state.tier, state.previous_score, state.previous_tier) == (
        55, "warm", 1, "cold"
    )  # fmt: skip
    view = await job_profile(store, "u1", "J-7", T0)
    assert view.pillars == {"entrance": 0.0, "activity": 0.0, "interaction": 40.0}


async def test_job_id_is_read_from_jobId_else_job_id_and_integers_count(store: ScoreStore) -> None:
    outcomes = await store.apply_batch(
        [
            job_event("m1", T0, "J-1", field="job_id"),
            job_event("m2", T0 + 1, 42),
            job_event("m3", T0 + 2, "", event="Article Read"),
        ]
    )
    assert [[s.job_id for s in o.jobs] for o in outcomes] == [["J-1"], ["42"], []]


async def test_event_without_a_job_writes_no_job_key(
    store: ScoreStore, redis_client: aioredis.Redis, redis_prefix: str
) -> None:
    [outcome] = await store.apply_batch([job_event("m1", T0, None)])
    assert outcome.outcome == "scored" and outcome.jobs == ()
    keys = {k.decode() async for k in redis_client.scan_iter(match=f"{redis_prefix}*")}
    assert not [k for k in keys if ":j" in k.rsplit("}", 1)[-1]], keys


async def test_replayed_event_does_not_change_the_job_profile(store: ScoreStore) -> None:
    first = await store.apply_batch([job_event("m1", T0, "J-7", event="Application Submitted")])
    replay = await store.apply_batch([job_event("m1", T0, "J-7", event="Application Submitted")])
    assert replay[0].outcome == "duplicate"
    profile = await job_profile(store, "u1", "J-7", T0)
    assert profile.raw == first[0].jobs[0].raw == 40.0


async def test_a_replayed_event_finds_its_jobs_current_state_without_previous_values(
    store: ScoreStore,
) -> None:
    # given an event naming J-7, then one naming J-8 (the records of both maybe never published)
    first = await store.apply_batch([job_event("m1", T0, "J-7", event="Application Submitted")])
    await store.apply_batch([job_event("m2", T0 + 60, "J-8")])
    # when the first is replayed
    [replay] = await store.apply_batch([job_event("m1", T0, "J-7", event="Application Submitted")])
    # then the duplicate carries J-7's state as stored (its change's sequence), as if from nothing
    assert replay.outcome == "duplicate"
    assert replay.jobs == (first[0].jobs[0]._replace(previous_score=None, previous_tier=None),)


async def test_a_replayed_merge_finds_the_current_states_of_the_jobs_it_moved(
    store: ScoreStore,
) -> None:
    # given an anonymous visitor's jobs folded into u1 by an identify, then u1's job J-7 grown
    anon = [job_event("a1", T0, "J-7", user=None, anonymous="v1", event="Application Submitted")]
    identify = interaction("i1", T0 + 60, kind="identify", user_id="u1", anonymous_id="v1")
    await store.apply_batch([*anon, job_event("k0", T0 + 30, "J-9")])
    await store.apply_batch([identify])
    [grown] = await store.apply_batch([job_event("k1", T0 + 90, "J-7")])
    # when the identify is replayed
    [replay] = await store.apply_batch([identify])
    # then the duplicate carries u1's current state of J-7 (not J-9: the merge did not move it),
    # and the visitor leaving J-7
    assert replay.outcome == "duplicate"
    current = grown.jobs[0]._replace(previous_score=None, previous_tier=None)
    assert [(s.candidate_id, s.job_id, s.removed) for s in replay.jobs] == [
        ("u1", "J-7", False),
        ("anon:v1", "J-7", True),
    ]
    assert replay.jobs[0] == current


EXAMPLES = settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@EXAMPLES
@given(
    events=st.lists(
        st.tuples(
            st.sampled_from(UNCAPPED),
            st.floats(min_value=T0, max_value=T0 + 10 * DAY, allow_nan=False),
            st.sampled_from(["J-1", "J-2", None]),
        ),
        min_size=1,
        max_size=12,
    ),
    seed=st.integers(0, 2**16),
)
async def test_job_profile_equals_the_closed_form_over_its_events_in_any_order(
    store: ScoreStore,
    events: list[tuple[str, float, str | None]],
    seed: int,
) -> None:
    user = uuid.uuid4().hex  # one candidate per example
    items = [
        job_event(f"m{k}", t, job, event=name, user=user, received=T0 + 10 * DAY)
        for k, (name, t, job) in enumerate(events)
    ]
    shuffled = items[:]
    random.Random(seed).shuffle(shuffled)
    for k in range(0, len(shuffled), 3):
        await store.apply_batch(shuffled[k : k + 3])
    now = T0 + 11 * DAY
    view = await store.candidate_jobs("acme", user, now)
    for job in ("J-1", "J-2"):
        scored = [event_points(i, RULES) for i in items if i.properties.get("jobId") == job]
        expected = closed_form([s for s in scored if s is not None], now, RULES)
        found = [j for j in (view.jobs if view else ()) if j.job_id == job]
        if not scored:
            assert not found
            continue
        assert close(found[0].raw, expected.raw), (found[0].raw, expected.raw)
        for pillar, value in expected.pillars.items():
            assert close(found[0].pillars[pillar], value)
        assert found[0].score == score_of(found[0].raw, RULES.score_scale)


async def test_a_candidate_keeps_at_most_jobs_kept_profiles_dropping_the_weakest(
    redis_client: aioredis.Redis, redis_prefix: str
) -> None:
    store = ScoreStore(redis_client, prefix=redis_prefix, rules=RULES, jobs_kept=3)
    strong = [job_event(f"a{j}", T0 + j, f"J-{j}", event="Article Read") for j in range(3)]
    await store.apply_batch(strong)
    [weak] = await store.apply_batch([job_event("v", T0 + 10, "J-weak")])  # 2 points < 4
    assert [(s.job_id, s.removed) for s in weak.jobs] == [("J-weak", True)]
    [strongest] = await store.apply_batch(
        [job_event("s", T0 + 20, "J-new", event="Application Submitted")]
    )
    assert [(s.job_id, s.removed) for s in strongest.jobs] == [("J-new", False), ("J-0", True)]
    view = await store.candidate_jobs("acme", "u1", T0 + 30)
    assert view is not None
    assert [j.job_id for j in view.jobs] == ["J-new", "J-2", "J-1"]
    page = await store.job_leaderboard("acme", "J-0", now=T0 + 30)
    assert page.entries == ()


async def test_job_leaderboard_ranks_a_jobs_candidates_by_their_score_for_it(
    store: ScoreStore,
) -> None:
    await store.apply_batch(
        [
            job_event("m1", T0, "J-7", user="ann", event="Application Submitted"),
            job_event("m2", T0, "J-7", user="bob", event="Article Read"),
            job_event("m3", T0, "J-8", user="bob", event="Application Submitted"),
            job_event("m4", T0, "J-7", user="cid", event="Application Submitted"),
            job_event("m5", T0 + 1, "J-7", user="cid", event="Application Submitted"),
        ]
    )
    page = await store.job_leaderboard("acme", "J-7", now=T0 + 2)
    assert [(e.candidate_id, e.tier) for e in page.entries] == [
        ("cid", "hot"), ("ann", "warm"), ("bob", "cold")
    ]  # fmt: skip
    hot = await store.job_leaderboard("acme", "J-7", "hot", now=T0 + 2)
    assert [e.candidate_id for e in hot.entries] == ["cid"]
    first = await store.job_leaderboard("acme", "J-7", limit=2, now=T0 + 2)
    rest = await store.job_leaderboard("acme", "J-7", limit=2, cursor=first.next_cursor, now=T0 + 2)
    assert [e.candidate_id for e in first.entries + rest.entries] == ["cid", "ann", "bob"]
    later = await store.job_leaderboard("acme", "J-7", "hot", now=T0 + 2 + H)  # halved: 64
    assert later.entries == ()


async def test_job_tiers_of_the_template_apply_to_job_profiles(
    redis_client: aioredis.Redis, redis_prefix: str
) -> None:
    job_tiers = [t.model_dump() for t in RULES.tiers]
    job_tiers[2] |= {"enter": 50, "exit": 45}
    rules = Rules.model_validate(RULES.model_dump() | {"job_tiers": job_tiers})
    store = ScoreStore(redis_client, prefix=redis_prefix, rules=rules)
    [outcome] = await store.apply_batch([job_event("m1", T0, "J-7", event="Application Submitted")])
    assert outcome.after is not None and outcome.after.tier == "warm"
    assert outcome.jobs[0].tier == "hot"  # 55 >= the job tiers' hot enter, 50
    hot = await store.job_leaderboard("acme", "J-7", "hot", now=T0)
    assert [e.candidate_id for e in hot.entries] == ["u1"]


async def test_identify_folds_the_anonymous_job_profiles_in_exactly(store: ScoreStore) -> None:
    anon = [
        job_event("a1", T0, "J-7", user=None, anonymous="v1", event="Article Read"),
        job_event("a2", T0 + DAY, "J-8", user=None, anonymous="v1"),
    ]
    known = [job_event("k1", T0 + 2 * DAY, "J-7", event="Application Submitted")]
    identify = interaction("i1", T0 + 3 * DAY, kind="identify", user_id="u1", anonymous_id="v1")
    await store.apply_batch(anon + known)
    [merged] = await store.apply_batch([identify])
    assert merged.outcome == "merged"
    assert {(s.job_id, s.candidate_id, s.removed) for s in merged.jobs} == {
        ("J-7", "u1", False), ("J-8", "u1", False), ("J-7", "anon:v1", True),
        ("J-8", "anon:v1", True),
    }  # fmt: skip
    now = T0 + 4 * DAY
    for job, items in (("J-7", [anon[0], known[0]]), ("J-8", [anon[1]])):
        scored = [e for e in (event_points(i, RULES) for i in items) if e is not None]
        expected = closed_form(scored, now, RULES)
        assert close((await job_profile(store, "u1", job, now)).raw, expected.raw)
    page = await store.job_leaderboard("acme", "J-7", now=now)
    assert [e.candidate_id for e in page.entries] == ["u1"]
    replay = await store.apply_batch([identify])
    assert replay[0].outcome == "duplicate"
    assert close((await job_profile(store, "u1", "J-8", now)).raw, 2 * 2 ** (-3))
    via_anon = await store.candidate_jobs("acme", "anon:v1", now)
    assert via_anon is not None and via_anon.candidate_id == "u1"


async def test_alias_merges_keep_the_bound_on_job_profiles(
    redis_client: aioredis.Redis, redis_prefix: str
) -> None:
    store = ScoreStore(redis_client, prefix=redis_prefix, rules=RULES, jobs_kept=2)
    await store.apply_batch(
        [
            job_event("a", T0, "J-1", user="old", event="Application Submitted"),
            job_event("b", T0, "J-2", user="old"),
            job_event("c", T0, "J-3", user="u1", event="Article Read"),
        ]
    )
    [merged] = await store.apply_batch([alias("al", "old", "u1")])
    assert merged.outcome == "merged"
    view = await store.candidate_jobs("acme", "u1", T0 + 2)
    assert view is not None and [j.job_id for j in view.jobs] == ["J-1", "J-3"]
    dropped = [s for s in merged.jobs if s.job_id == "J-2" and s.candidate_id == "u1"]
    assert dropped and dropped[0].removed
    assert (await store.job_leaderboard("acme", "J-2", now=T0 + 2)).entries == ()


async def test_erasure_removes_job_profiles_and_job_leaderboard_entries(
    store: ScoreStore, redis_client: aioredis.Redis, redis_prefix: str
) -> None:
    await store.apply_batch(
        [
            job_event("m1", T0, "J-7", event="Application Submitted"),
            job_event("m2", T0, "J-7", user="u2"),
        ]
    )
    erasure = await store.erase("acme", "u1")
    assert erasure.existed
    assert await store.candidate_jobs("acme", "u1", T0) is None
    page = await store.job_leaderboard("acme", "J-7", now=T0)
    assert [e.candidate_id for e in page.entries] == ["u2"]
    leftover = [
        k.decode() async for k in redis_client.scan_iter(match=f"{redis_prefix}{{acme:u1}}*")
    ]
    assert leftover in ([], [f"{redis_prefix}{{acme:u1}}:e"]), leftover
    seqs = await redis_client.hkeys(store.keys.job_sequences("acme", "J-7"))
    assert seqs == [b"u2"]


@pytest.mark.parametrize("job", ["J 7/ä", "x" * 128])
async def test_any_printable_job_id_up_to_128_characters_is_a_job(
    store: ScoreStore, job: str
) -> None:
    [outcome] = await store.apply_batch([job_event("m1", T0, job)])
    assert [s.job_id for s in outcome.jobs] == [job]


async def test_job_ids_with_control_characters_or_too_long_name_no_job(store: ScoreStore) -> None:
    outcomes = await store.apply_batch(
        [job_event("m1", T0, "J\x1f7"), job_event("m2", T0, "x" * 129)]
    )
    assert [o.jobs for o in outcomes] == [(), ()]
    assert [o.outcome for o in outcomes] == ["scored", "scored"]


def test_job_state_removed_means_no_tier() -> None:
    assert JobState("J", "u1", 3).removed
