"""The Redis score store, one behaviour per test (real Redis, default-shaped rules)."""

from __future__ import annotations

import collections
import itertools
import math
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
import redis.asyncio as aioredis

from engagement.model.records import Interaction, format_time
from engagement.model.rules import Rules
from engagement.model.score_views import ApplyOutcome, previous
from engagement.model.scoring import closed_form, decay, event_points
from engagement.store import pending_erasure
from engagement.store.erasure_fence import (
    FENCE_SECONDS,
    FULL_READ_SECONDS,
    REACHED_SECONDS,
    fence_id,
)
from engagement.store.redis_store import ScoreStore
from tests.unit.engagement.model.strategies import RULES, T0, alias, interaction

H = RULES.half_life_seconds
DAY = 86400.0


def at(seconds: float) -> datetime:
    """The instant ``seconds`` after T0."""
    return datetime.fromtimestamp(T0 + seconds, UTC)


@pytest.fixture
def ingest(redis_client: aioredis.Redis, redis_prefix: str) -> ScoreStore:
    """The ingest's store beside the scorer's (``store``): another writer of the fences."""
    return ScoreStore(redis_client, prefix=redis_prefix, rules=RULES)


def fences_of(*candidates: str) -> list[str]:
    """The fence ids of candidates of tenant acme."""
    return [fence_id("acme", candidate) for candidate in candidates]


async def test_replayed_event_does_not_change_score(store: ScoreStore) -> None:
    first = await store.apply_batch([interaction("m1", T0, event="Application Submitted")])
    replay = await store.apply_batch([interaction("m1", T0, event="Application Submitted")])
    assert first[0].outcome == "scored" and replay[0].outcome == "duplicate"
    assert replay[0].after == first[0].after


async def test_new_candidate_starts_at_score_one_in_the_floor_tier(store: ScoreStore) -> None:
    [outcome] = await store.apply_batch([interaction("m1", T0, event="Application Submitted")])
    assert outcome.before is not None and outcome.after is not None
    assert (outcome.before.score, outcome.before.tier, outcome.before.sequence) == (1, "cold", 0)
    assert (outcome.after.score, outcome.after.tier, outcome.after.sequence) == (55, "warm", 1)
    assert outcome.score_changed


async def test_unknown_event_is_unscored_and_writes_nothing(
    store: ScoreStore, redis_client: aioredis.Redis, redis_prefix: str
) -> None:
    [outcome] = await store.apply_batch([interaction("m1", T0, event="Lunch Eaten")])
    assert outcome.outcome == "unscored" and outcome.after is None
    assert [k async for k in redis_client.scan_iter(match=f"{redis_prefix}*")] == []


async def test_events_past_the_daily_cap_are_capped_per_utc_day(store: ScoreStore) -> None:
    midnight = math.floor(T0 / DAY) * DAY + DAY
    same_day = [interaction(f"p{i}", midnight + 60 * i, kind="page") for i in range(4)]
    next_day = [interaction("p9", midnight + DAY + 1, kind="page")]
    outcomes = await store.apply_batch(same_day + next_day)
    assert [o.outcome for o in outcomes] == ["scored", "scored", "scored", "capped", "scored"]
    assert outcomes[3].after is not None and outcomes[3].before == previous(outcomes[3].after)
    view = await store.get_candidate("acme", "u1", midnight + DAY + 1)
    assert view is not None
    counted = [e for e in (event_points(i, RULES) for i in same_day[:3] + next_day) if e]
    assert view.state.raw == pytest.approx(closed_form(counted, midnight + DAY + 1, RULES).raw)


async def test_negative_points_lower_the_score_and_never_below_one(store: ScoreStore) -> None:
    outcomes = await store.apply_batch(
        [
            interaction("m1", T0, event="Article Read"),
            interaction("m2", T0 + 1, event="Job Alert Unsubscribed"),
        ]
    )
    assert outcomes[1].after is not None and outcomes[1].before is not None
    assert outcomes[1].after.raw < 0
    assert outcomes[1].after.score == 1 < outcomes[1].before.score


async def test_late_event_adds_its_decayed_points_at_the_reference_time(store: ScoreStore) -> None:
    await store.apply_batch([interaction("m1", T0 + DAY, event="Article Read")])
    [late] = await store.apply_batch(
        [interaction("m2", T0, event="Application Submitted", received=T0 + DAY)]
    )
    assert late.after is not None
    assert late.after.as_of == T0 + DAY
    assert late.after.raw == pytest.approx(4 + decay(40, DAY, H))
    assert late.after.last_event_at == T0 + DAY


async def test_a_lazy_batch_with_a_merge_midway_settles_every_interaction_once_in_order(
    store: ScoreStore,
) -> None:
    # given a batch produced lazily (as the scorer parses records while the store takes them):
    # anonymous history, an unscored event, an identify, then more anonymous events
    batch = [
        interaction("a1", T0, event="Article Read", user_id=None, anonymous_id="x"),
        interaction("n1", T0 + 1, event="Not A Rule", user_id="u1"),
        interaction("i1", T0 + 2, kind="identify", user_id="u1", anonymous_id="x"),
        interaction("a2", T0 + 3, event="Job Viewed", user_id=None, anonymous_id="x"),
        interaction("u2", T0 + 4, event="Application Submitted", user_id="u1"),
    ]
    taken: list[str] = []

    def lazily() -> Iterator[Interaction]:
        for item in batch:
            taken.append(item.messageId)
            yield item

    seen: dict[int, ApplyOutcome] = {}

    def on_outcome(index: int, outcome: ApplyOutcome) -> None:
        assert index not in seen
        seen[index] = outcome

    # when it is applied
    outcomes = await store.apply_batch(lazily(), on_outcome=on_outcome)
    # then each interaction has its outcome, in order, reported once to the callback
    assert taken == [i.messageId for i in batch]
    assert [o.message_id for o in outcomes] == taken
    assert [o.outcome for o in outcomes] == ["scored", "unscored", "merged", "scored", "scored"]
    assert outcomes[3].candidate_id == "u1" and outcomes[3].redirected_from == "anon:x"
    assert seen == dict(enumerate(outcomes))
    # and the candidate holds the whole history exactly
    events = [e for i in batch if (e := event_points(i, RULES)) is not None]
    expected = closed_form(events, T0 + 4, RULES)
    view = await store.get_candidate("acme", "u1", T0 + 4)
    assert view is not None and view.state.sequence == 3  # the merge, then two events
    assert view.state.raw == pytest.approx(expected.raw, rel=1e-12)


async def test_identify_folds_the_anonymous_history_into_the_candidate(store: ScoreStore) -> None:
    await store.apply_batch(
        [
            interaction("a1", T0, event="Application Submitted", user_id=None, anonymous_id="x"),
            interaction("u1", T0 + 10, event="Article Read"),
        ]
    )
    [merge] = await store.apply_batch(
        [interaction("i1", T0 + 20, kind="identify", user_id="u1", anonymous_id="x")]
    )
    assert merge.outcome == "merged" and merge.merged_from == "anon:x"
    assert merge.after is not None and merge.after.raw == pytest.approx(4 + decay(40, 10, H))
    assert merge.merged_source is not None and merge.merged_source.merged_into == "u1"
    assert await store.get_candidate("acme", "anon:x", T0) is not None  # resolves to u1


async def test_later_anonymous_events_are_redirected_and_replays_count_once(
    store: ScoreStore,
) -> None:
    before = interaction("a1", T0, event="Article Read", user_id=None, anonymous_id="x")
    identify = interaction("i1", T0 + 5, kind="identify", user_id="u1", anonymous_id="x")
    after = interaction(
        "a2", T0 + 10, event="Application Submitted", user_id=None, anonymous_id="x"
    )
    first = await store.apply_batch([before, identify, after])
    assert first[2].outcome == "scored" and first[2].candidate_id == "u1"
    assert first[2].redirected_from == "anon:x"
    replay = await store.apply_batch([after, identify, before])
    assert [o.outcome for o in replay] == ["duplicate", "duplicate", "duplicate"]
    view = await store.get_candidate("acme", "u1", T0 + 10)
    assert view is not None and view.state.raw == pytest.approx(40 + decay(4, 10, H))
    assert view.state.sequence == 2


async def test_merged_anonymous_id_leaves_the_leaderboard(store: ScoreStore) -> None:
    await store.apply_batch(
        [interaction("a1", T0, event="Article Read", user_id=None, anonymous_id="x")]
    )
    await store.apply_batch(
        [interaction("i1", T0, kind="identify", user_id="u1", anonymous_id="x")]
    )
    page = await store.leaderboard("acme", now=T0)
    assert [e.candidate_id for e in page.entries] == ["u1"]


async def test_erase_leaves_no_key_of_the_candidate_or_its_anonymous_ids(
    store: ScoreStore, redis_client: aioredis.Redis, redis_prefix: str
) -> None:
    await store.apply_batch(
        [
            interaction("a1", T0, event="Article Read", user_id=None, anonymous_id="x"),
            interaction("i1", T0, kind="identify", user_id="u1", anonymous_id="x"),
            interaction("u2", T0, event="Article Read", user_id="u2"),
        ]
    )
    erased = await store.erase("acme", "u1")
    assert erased.existed and erased.merged_ids == ("anon:x",) and erased.last_sequence == 1
    await store.erasure_published(erased)
    keys = [k.decode() async for k in redis_client.scan_iter(match=f"{redis_prefix}*")]
    assert not [k for k in keys if "u1" in k or "anon:x" in k]
    for key in keys:
        if key.endswith(":seq"):
            assert await redis_client.hkeys(key) == [b"u2"]  # type: ignore[misc]
    assert await store.get_candidate("acme", "u1", T0) is None
    assert (await store.erase("acme", "u1")).existed is False


async def test_an_erasure_fence_goes_after_its_own_request_was_reached_or_never_was(
    store: ScoreStore, redis_client: aioredis.Redis, redis_prefix: str
) -> None:
    # given u1 and an id merged into it fenced by a DELETE, then u1 fenced again by another
    u1, x = fence_id("acme", "u1"), fence_id("acme", "anon:x")
    await store.raise_fences("acme", ["u1", "anon:x"], at(0))
    await store.raise_fences("acme", ["u1"], at(5))
    assert await store.fences(T0 + 10) == {u1: T0 + 5, x: T0}
    # when the scorer reaches the first DELETE's requests
    await store.reach_fence("acme", "u1", at(0), at(20))
    await store.reach_fence("acme", "anon:x", at(0), at(20))
    # then the merged id's fence holds for REACHED_SECONDS more (replays), u1's until its own
    assert await store.fences(T0 + 20 + REACHED_SECONDS) == {u1: T0 + 5, x: T0}
    assert await store.fences(T0 + 21 + REACHED_SECONDS) == {u1: T0 + 5}
    await store.reach_fence("acme", "u1", at(5), at(30))
    assert await store.fences(T0 + 31 + REACHED_SECONDS) == {}
    assert await redis_client.exists(f"{redis_prefix}erasing") == 0
    # and a fence whose request never comes is dropped once it is older than FENCE_SECONDS
    await store.raise_fences("acme", ["u2"], at(0))
    assert await store.fences(T0 + FENCE_SECONDS) == {fence_id("acme", "u2"): T0}
    assert await store.fences(T0 + FENCE_SECONDS + 1) == {}
    # and the fences hash names no one: only digests and instants
    await store.raise_fences("acme", ["u1"], at(0))
    stored = await redis_client.hgetall(f"{redis_prefix}erasing")  # type: ignore[misc]
    assert not [part for item in stored.items() for part in item if b"u1" in part]


async def test_the_scorer_reads_the_erasure_fences_in_full_only_once_they_changed(
    store: ScoreStore, redis_client: aioredis.Redis, redis_prefix: str, ingest: ScoreStore
) -> None:
    # given a scorer's store and the ingest's, on the same Redis, and a fence raised by a DELETE
    u1, u2, u3 = fences_of("u1", "u2", "u3")
    erasing = f"{redis_prefix}erasing"
    assert await store.fences(T0) == {}
    await ingest.raise_fences("acme", ["u1"], at(0))
    seen = await store.fences(T0 + 1)
    assert seen == {u1: T0}
    # when a fence is raised again without the change token (as a writer of a release before it
    # did, during a rolling upgrade)
    await redis_client.hset(erasing, u1, format_time(at(2)))  # type: ignore[misc]
    # then the scorer keeps what it read (it asked for the token and the size only) for at most
    # FULL_READ_SECONDS, and a fence added that way is seen at once (the size moved)
    assert await store.fences(T0 + 3) is seen
    assert await store.fences(T0 + 1 + FULL_READ_SECONDS) == {u1: T0 + 2}
    await redis_client.hset(erasing, u3, format_time(at(12)))  # type: ignore[misc]
    assert await store.fences(T0 + 13) == {u1: T0 + 2, u3: T0 + 12}
    # and a DELETE makes it read them all again, and a fence past its time goes from the hash too
    await ingest.raise_fences("acme", ["u2"], at(14))
    assert await store.fences(T0 + 15) == {u1: T0 + 2, u2: T0 + 14, u3: T0 + 12}
    await store.reach_fence("acme", "u1", at(2), at(16))
    assert await store.fences(T0 + 16 + REACHED_SECONDS + 1) == {u2: T0 + 14, u3: T0 + 12}
    assert not await redis_client.hexists(erasing, u1)  # type: ignore[misc]
    # and a hash without a token is read in full each time
    await redis_client.delete(erasing)
    await redis_client.hset(erasing, u1, format_time(at(0)))  # type: ignore[misc]
    assert await store.fences(T0 + 1) == {u1: T0}
    await redis_client.hset(erasing, u1, format_time(at(1)))  # type: ignore[misc]
    assert await store.fences(T0 + 2) == {u1: T0 + 1}


async def test_the_scorers_own_fence_writes_keep_what_it_read_current_without_a_read(
    store: ScoreStore, redis_client: aioredis.Redis, redis_prefix: str, ingest: ScoreStore
) -> None:
    # given fences read by the scorer: u2 raised a week ago, u1 ten seconds later, u3 since
    u1, u2, u3 = fences_of("u1", "u2", "u3")
    erasing = f"{redis_prefix}erasing"
    await ingest.raise_fences("acme", ["u2"], at(0))
    await ingest.raise_fences("acme", ["u1"], at(10))
    await ingest.raise_fences("acme", ["u3"], at(FENCE_SECONDS - 10))
    week = T0 + FENCE_SECONDS
    assert await store.fences(week - 5) == {u1: T0 + 10, u2: T0, u3: week - 10}
    # and a change to u3 that only a full read would see (no change token)
    await redis_client.hset(erasing, u3, format_time(at(FENCE_SECONDS - 9)))  # type: ignore[misc]
    # when the scorer reaches u1's request, and u2 is past its time a moment later
    await store.reach_fence("acme", "u1", at(10), at(FENCE_SECONDS - 4))
    assert await store.fences(week - 3) == {u1: T0 + 10, u2: T0, u3: week - 10}
    # then u2 goes from what it holds and from the hash, u1 is marked reached in both, and
    # none of it took a full read (u3's change is not seen yet)
    assert await store.fences(week + 1) == {u1: T0 + 10, u3: week - 10}
    assert not await redis_client.hexists(erasing, u2)  # type: ignore[misc]
    stored = await redis_client.hget(erasing, u1)  # type: ignore[misc]
    assert stored == f"{format_time(at(10))} {format_time(at(FENCE_SECONDS - 4))}".encode()
    assert await store.fences(week + 2) == {u1: T0 + 10, u3: week - 10}  # its drop kept it so
    # and the next full read, FULL_READ_SECONDS after the last, sees it
    assert await store.fences(week - 5 + FULL_READ_SECONDS) == {u1: T0 + 10, u3: week - 9}


async def test_a_fence_write_by_another_between_the_scorers_read_and_its_own_is_seen_next(
    store: ScoreStore, redis_client: aioredis.Redis, redis_prefix: str, ingest: ScoreStore
) -> None:
    # given fences read by the scorer
    u1, u2, u3 = fences_of("u1", "u2", "u3")
    erasing = f"{redis_prefix}erasing"
    await ingest.raise_fences("acme", ["u1", "u2"], at(0))
    assert await store.fences(T0 + 1) == {u1: T0, u2: T0}
    # when a DELETE raises u2 again (a new token, the same size) before the scorer reaches u1
    await ingest.raise_fences("acme", ["u2"], at(2))
    await store.reach_fence("acme", "u1", at(0), at(3))
    # then its own write does not hide the other: the next batch reads the hash
    assert await store.fences(T0 + 4) == {u1: T0, u2: T0 + 2}
    # and when a writer of a release before the token adds a fence between the scorer's check
    # and its drop of a fence past its time (here: the drop run by hand right after the add)
    week = T0 + FENCE_SECONDS
    [u4] = fences_of("u4")
    await ingest.raise_fences("acme", ["u4"], at(0))  # never reached: past its time at `week`
    assert await store.fences(week - 1) == {u2: T0 + 2, u4: T0}
    await redis_client.hset(erasing, u3, format_time(at(FENCE_SECONDS)))  # type: ignore[misc]
    await store._fences._drop_past(redis_client, store.keys, week + 1)
    # then the next batch sees it (the hash's size is not the one the scorer held)
    assert await store.fences(week + 2) == {u2: T0 + 2, u3: week}


async def test_tier_counts_and_leaderboard_agree_with_per_candidate_scores(
    store: ScoreStore,
) -> None:
    events = ["Application Submitted", "Article Read", "Job Viewed", "Job Alert Unsubscribed"]
    batch = [
        interaction(f"m{c}-{k}", T0 + 3600 * k, event=events[(c * k + c) % 4], user_id=f"c{c}")
        for c in range(12)
        for k in range(c % 5 + 1)
    ]
    await store.apply_batch(batch)
    for now in (T0 + 5 * 3600, T0 + DAY, T0 + 3 * DAY, T0 + 30 * DAY):
        views = [await store.get_candidate("acme", f"c{c}", now) for c in range(12)]
        expected = collections.Counter(v.state.tier for v in views if v)
        counts = await store.tier_counts("acme", now)
        assert counts == {name: expected.get(name, 0) for name in RULES.tier_names}
        page = await store.leaderboard("acme", limit=100, now=now)
        scores = {v.candidate_id: v.state.score for v in views if v}
        assert [e.score for e in page.entries] == sorted(scores.values(), reverse=True)
        assert all(scores[e.candidate_id] == e.score for e in page.entries)


async def test_a_large_batch_ranks_each_candidate_once_at_its_last_state(
    store: ScoreStore, redis_client: aioredis.Redis, redis_prefix: str
) -> None:
    # a batch larger than a chunk of sent commands, each candidate's events spread over it
    events = ["Application Submitted", "Article Read", "Job Viewed", "Job Alert Unsubscribed"]
    n = 500
    batch = [
        interaction(f"m{k}", T0 + 60 * (k % 7), event=events[k % 4], user_id=f"c{k % 40}")
        for k in range(n)
    ]
    outcomes = await store.apply_batch(batch)
    last = {o.candidate_id: o.after for o in outcomes if o.after is not None}
    assert len(last) == 40
    seqs = await redis_client.hgetall(f"{redis_prefix}{{acme}}:seq")  # type: ignore[misc]
    assert seqs == {c.encode(): str(state.sequence).encode() for c, state in last.items()}
    now = T0 + 3600
    page = await store.leaderboard("acme", limit=100, now=now)
    assert sorted(e.candidate_id for e in page.entries) == sorted(last)
    for entry in page.entries:
        view = await store.get_candidate("acme", entry.candidate_id, now)
        assert view is not None and (entry.score, entry.tier) == (view.state.score, view.state.tier)


async def test_candidates_moving_up_and_down_the_tiers_are_in_their_stored_tier_set_only(
    store: ScoreStore, redis_client: aioredis.Redis, redis_prefix: str
) -> None:
    # given candidates whose batches raise them (applications) and lower them (unsubscribes)
    up, down = "Application Submitted", "Job Alert Unsubscribed"
    moves = [up, up, down, down, down]
    path: dict[str, list[str]] = collections.defaultdict(list)
    for k in range(10):
        batch = [
            interaction(f"m{k}-{c}", T0 + k, event=moves[(k + c) % 5], user_id=f"c{c}")
            for c in range(5)
        ]
        # when each batch is applied
        outcomes = await store.apply_batch(batch)
        # then every candidate is a member of its stored tier's set and of no other
        for outcome in outcomes:
            assert outcome.after is not None
            path[outcome.candidate_id].append(outcome.after.tier)
            for name in RULES.tier_names:
                member = await redis_client.zscore(
                    f"{redis_prefix}{{acme}}:tier:{name}", outcome.candidate_id
                )
                assert (member is not None) == (name == outcome.after.tier)
    crossings = sum(a != b for tiers in path.values() for a, b in itertools.pairwise(tiers))
    assert crossings >= 10  # the candidates did move up and down


async def test_leaderboard_pages_cover_every_candidate_of_a_tier_once(store: ScoreStore) -> None:
    batch = [
        interaction(f"m{c}", T0, event="Application Submitted", user_id=f"c{c}") for c in range(7)
    ]
    batch += [interaction("cold", T0, event="Job Viewed", user_id="z")]
    await store.apply_batch(batch)
    seen, cursor = [], None
    while True:
        page = await store.leaderboard("acme", "warm", limit=3, cursor=cursor, now=T0)
        seen += [e.candidate_id for e in page.entries]
        cursor = page.next_cursor
        if cursor is None:
            break
    assert sorted(seen) == [f"c{c}" for c in range(7)]


async def test_stale_rank_update_never_overwrites_a_newer_one(store: ScoreStore) -> None:
    first, second = await store.apply_batch(
        [
            interaction("m1", T0, event="Application Submitted"),
            interaction("m2", T0 + 1, event="Application Submitted"),
        ]
    )
    assert first.after is not None and second.after is not None
    assert await store.update_rank("acme", "u1", first.after) is False
    assert await store.tier_counts("acme", T0 + 1) == {"cold": 0, "warm": 0, "hot": 1}


async def test_a_changed_tier_list_keeps_each_candidate_in_one_tier_set(
    store: ScoreStore, redis_client: aioredis.Redis, redis_prefix: str
) -> None:
    # given a candidate ranked warm under the rules' three tiers
    [first] = await store.apply_batch([interaction("m1", T0, event="Application Submitted")])
    assert first.after is not None and first.after.tier == "warm"
    # when the rules gain a tier below warm and the candidate's next event makes it hot
    tiers = [t.model_dump() for t in RULES.tiers]
    tiers.insert(1, {"name": "lukewarm", "enter": 20, "exit": 15})
    rules = Rules.model_validate({**RULES.model_dump(), "tiers": tiers})
    changed = ScoreStore(redis_client, prefix=redis_prefix, rules=rules)
    await changed.apply_batch(
        [interaction(f"m{k}", T0 + k, event="Application Submitted") for k in range(2, 5)]
    )
    # then it is in the hot set only
    members = {
        name: await redis_client.zrange(f"{redis_prefix}{{acme}}:tier:{name}", 0, -1)
        for name in rules.tier_names
    }
    assert members == {name: [b"u1"] if name == "hot" else [] for name in rules.tier_names}


async def test_scorers_with_different_tier_lists_side_by_side_leave_no_candidate_in_two_sets(
    store: ScoreStore, redis_client: aioredis.Redis, redis_prefix: str
) -> None:
    # given a rolling rules change: one scorer knows a "lukewarm" tier, the other does not
    tiers = [t.model_dump() for t in RULES.tiers]
    tiers.insert(1, {"name": "lukewarm", "enter": 20, "exit": 15})
    rules = Rules.model_validate({**RULES.model_dump(), "tiers": tiers})
    new = ScoreStore(redis_client, prefix=redis_prefix, rules=rules)
    old = store

    async def sets_of(candidate: str) -> list[str]:
        names = list(rules.tier_names)
        found = [
            await redis_client.zscore(f"{redis_prefix}{{acme}}:tier:{n}", candidate) for n in names
        ]
        return [name for name, rank in zip(names, found, strict=True) if rank is not None]

    # when the new scorer ranks the candidate lukewarm, the old one moves it to warm (it cannot
    # see the lukewarm set), and the new one then scores it again, still warm
    await new.apply_batch([interaction(f"m{k}", T0 + k, event="Article Read") for k in (1, 2, 3)])
    assert await sets_of("u1") == ["lukewarm"]
    await old.apply_batch([interaction("m4", T0 + 4, event="Application Submitted")])
    await new.apply_batch([interaction("m5", T0 + 5, event="Job Viewed")])
    # then the candidate is in the warm set only
    assert await sets_of("u1") == ["warm"]


async def test_candidate_view_explains_the_score_with_decayed_contributions(
    store: ScoreStore,
) -> None:
    await store.apply_batch(
        [
            interaction("m1", T0, event="Article Read", channel="ad"),
            interaction("m2", T0 + H, event="Job Viewed"),
        ]
    )
    view = await store.get_candidate("acme", "u1", T0 + 2 * H)
    assert view is not None
    assert [(c.message_id, c.points) for c in view.contributions] == [("m2", 2.0), ("m1", 6.0)]
    assert [c.current_points for c in view.contributions] == pytest.approx([1.0, 1.5])
    assert view.state.raw == pytest.approx(2.5)
    assert view.state.channels == pytest.approx({"web": 1.0, "ad": 1.5})
    assert view.as_dict()["lastEventAt"] is not None


async def test_unknown_candidate_has_no_view(store: ScoreStore) -> None:
    assert await store.get_candidate("acme", "nobody", T0) is None


async def test_tenants_lists_every_tenant_with_scored_candidates(store: ScoreStore) -> None:
    await store.apply_batch(
        [interaction("m1", T0, tenant="acme"), interaction("m2", T0, tenant="globex")]
    )
    assert await store.tenants() == ["acme", "globex"]


async def test_alias_folds_the_previous_id_into_the_user(store: ScoreStore) -> None:
    await store.apply_batch([interaction("m1", T0, event="Article Read", user_id="old-crm-id")])
    alias = interaction("al1", T0 + 1, kind="alias", user_id="u1").model_copy(
        update={"previousId": "old-crm-id"}
    )
    [merge] = await store.apply_batch([alias])
    assert (merge.outcome, merge.merged_from) == ("merged", "old-crm-id")
    assert merge.after is not None and merge.after.raw == pytest.approx(4.0)


async def test_contributions_keep_only_the_most_recent_events(store: ScoreStore) -> None:
    batch = [interaction(f"m{i}", T0 + i, event="Job Viewed") for i in range(20)]
    await store.apply_batch(batch)
    view = await store.get_candidate("acme", "u1", T0 + 20)
    assert view is not None
    assert [c.message_id for c in view.contributions] == [f"m{i}" for i in range(19, 13, -1)]


async def test_channel_holding_the_field_separator_is_scored_and_readable(
    store: ScoreStore,
) -> None:
    # given a client-chosen properties.channel containing \x1f (the snapshot separator)
    odd = interaction("m1", T0, event="Application Submitted", channel="a\x1fb")
    # when it and a later event of the same candidate are applied
    first = await store.apply_batch([odd])
    later = await store.apply_batch([interaction("m2", T0 + 1)])
    # then both are scored and the candidate stays readable (no poison pill)
    assert [first[0].outcome, later[0].outcome] == ["scored", "scored"]
    assert await store.get_candidate("acme", "u1", T0 + 1) is not None


async def test_erase_follows_merges_of_merged_ids(
    store: ScoreStore, redis_client: aioredis.Redis, redis_prefix: str
) -> None:
    # given anon:x folded into old-crm-id, which an alias then folds into u1
    await store.apply_batch(
        [
            interaction("a1", T0, event="Article Read", user_id=None, anonymous_id="x"),
            interaction("i1", T0, kind="identify", user_id="old-crm-id", anonymous_id="x"),
        ]
    )
    alias = interaction("al1", T0 + 1, kind="alias", user_id="u1").model_copy(
        update={"previousId": "old-crm-id"}
    )
    await store.apply_batch([alias])
    # when u1 is erased (and its records published)
    erased = await store.erase("acme", "u1")
    await store.erasure_published(erased)
    # then no key of any id merged into it, directly or not, is left
    keys = [k.decode() async for k in redis_client.scan_iter(match=f"{redis_prefix}*")]
    assert not [k for k in keys if "u1" in k or "old-crm-id" in k or "anon:x" in k]


async def erase_failing_at_wipe(
    store: ScoreStore, redis: aioredis.Redis, candidate: str, *, wiped: bool
) -> None:
    """An erasure of ``candidate`` whose connection is lost at the first wipe, before the wipe
    or (``wiped``) once Redis ran it."""
    wipe = store._scripts["erase"]

    async def failing(**kwargs: object) -> object:
        if wiped:
            await wipe(**kwargs)  # type: ignore[arg-type]
        raise ConnectionError("lost the connection")

    with pytest.raises(ConnectionError):
        await pending_erasure.erase(
            redis, store.keys, "acme", candidate, wipe=failing,  # type: ignore[arg-type]
            rank=store._scripts["rank"], rank_keys=store._rank_keys("acme"),
        )  # fmt: skip


async def fold_x_into_u1(store: ScoreStore, *more: Interaction) -> None:
    """anon:x's Article Read, then its identify as u1 (then ``more``)."""
    await store.apply_batch(
        [
            interaction("a1", T0, event="Article Read", user_id=None, anonymous_id="x"),
            interaction("i1", T0, kind="identify", user_id="u1", anonymous_id="x"),
            *more,
        ]
    )


async def test_erase_keeps_a_merged_id_that_started_anew_after_its_own_erasure(
    store: ScoreStore, redis_client: aioredis.Redis
) -> None:
    # given anon:x folded into u1, then erased on its own (DELETE of anon:x), and browsing on: a
    # new profile of anon:x, no part of u1 any more
    await fold_x_into_u1(store)
    await store.erasure_published(await store.erase("acme", "anon:x", fence_at=at(30)))
    await store.apply_batch([interaction("a2", T0 + 60, user_id=None, anonymous_id="x")])
    # when u1 is erased, as a DELETE does
    erased = await store.erase("acme", "u1", fence_at=at(90))
    await store.erasure_published(erased)
    # then anon:x is neither erased with it nor fenced, and keeps its new profile and rank
    assert erased.merged_ids == ()
    fenced = await redis_client.hkeys(store.keys.erasing)  # type: ignore[misc]
    assert fence_id("acme", "anon:x").encode() not in fenced
    assert not await redis_client.exists(store.keys.pending_erasure("acme", "u1"))
    x = await store.get_candidate("acme", "anon:x", T0 + 60)
    assert x is not None and x.candidate_id == "anon:x"
    assert [c.message_id for c in x.contributions] == ["a2"]
    board = await store.leaderboard("acme", now=T0 + 60)
    assert [entry.candidate_id for entry in board.entries] == ["anon:x"]


async def test_a_merged_id_erased_on_its_own_merges_anew_when_it_identifies_again(
    store: ScoreStore,
) -> None:
    # given anon:x folded into u1, then erased on its own, and browsing on
    await fold_x_into_u1(store, interaction("u1", T0, event="Job Viewed", user_id="u1"))
    await store.erasure_published(await store.erase("acme", "anon:x"))
    await store.apply_batch([interaction("a2", T0 + 60, user_id=None, anonymous_id="x")])
    # when it identifies as u1 again
    [merge] = await store.apply_batch(
        [interaction("i2", T0 + 61, kind="identify", user_id="u1", anonymous_id="x")]
    )
    # then its new history is folded in (not a duplicate of the first merge)
    assert merge.outcome == "merged"
    u1 = await store.get_candidate("acme", "u1", T0 + 61)
    assert u1 is not None and u1.merged_ids == ("anon:x",)
    expected = closed_form(
        [e for e in (event_points(interaction(m, t, event=ev), RULES) for m, t, ev in
         [("a1", T0, "Article Read"), ("u1", T0, "Job Viewed"), ("a2", T0 + 60, "Job Viewed")])
         if e is not None],
        T0 + 61,
        RULES,
    )  # fmt: skip
    assert math.isclose(u1.state.raw, expected.raw, rel_tol=1e-12)


async def test_an_erase_of_a_merged_id_interrupted_at_its_wipe_counts_no_merge_twice(
    store: ScoreStore, redis_client: aioredis.Redis
) -> None:
    # given anon:x folded into u1, and its erasure failing at the wipe of its keys
    await fold_x_into_u1(store)
    await erase_failing_at_wipe(store, redis_client, "anon:x", wiped=False)
    before = await store.get_candidate("acme", "u1", T0 + 60)
    # when a new identify of x arrives meanwhile, then the erasure is retried and completes
    [merge] = await store.apply_batch(
        [interaction("i2", T0 + 60, kind="identify", user_id="u1", anonymous_id="x")]
    )
    erased = await store.erase("acme", "anon:x")
    await store.erasure_published(erased)
    # then u1 counted x's history once, and x is out of u1's merged ids, its entry gone
    after = await store.get_candidate("acme", "u1", T0 + 60)
    assert before is not None and after is not None
    assert after.state.raw == before.state.raw and merge.outcome in ("merged", "duplicate")
    assert after.merged_ids == ()
    assert not await redis_client.exists(store.keys.pending_erasure("acme", "anon:x"))


async def test_a_retried_erase_of_a_merged_id_leaves_every_candidate_it_was_folded_into(
    store: ScoreStore, redis_client: aioredis.Redis
) -> None:
    # given anon:x folded into u1, and its erasure failing right after the wipe of its keys
    await fold_x_into_u1(store)
    await erase_failing_at_wipe(store, redis_client, "anon:x", wiped=True)
    # and x identifying as u2 before the erasure is retried (its profile is gone: u1 is known
    # from the pending erasure only)
    await store.apply_batch(
        [interaction("i2", T0 + 10, kind="identify", user_id="u2", anonymous_id="x")]
    )
    await store.erasure_published(await store.erase("acme", "anon:x"))
    # then x is in neither u1's nor u2's merged ids, and folds its new history into u1 anew
    for owner in ("u1", "u2"):
        assert not await redis_client.sismember(
            store.keys.candidate("acme", owner).merged, "anon:x"
        )
    await store.apply_batch([interaction("a2", T0 + 60, user_id=None, anonymous_id="x")])
    [merge] = await store.apply_batch(
        [interaction("i3", T0 + 61, kind="identify", user_id="u1", anonymous_id="x")]
    )
    assert merge.outcome == "merged" and merge.after is not None
    assert merge.after.sequence == merge.before.sequence + 1  # type: ignore[union-attr]


async def test_erase_leaves_a_chain_through_an_id_erased_on_its_own_alone(
    store: ScoreStore,
) -> None:
    # given u2 folded into u3, then erased on its own and started anew, anon:z folded into it
    alias = interaction("al1", T0, kind="alias", user_id="u3").model_copy(
        update={"previousId": "u2"}
    )
    await store.apply_batch([interaction("u2a", T0, user_id="u2"), alias])
    await store.erasure_published(await store.erase("acme", "u2"))
    await store.apply_batch(
        [
            interaction("u2b", T0 + 60, user_id="u2"),
            interaction("z1", T0 + 61, user_id=None, anonymous_id="z"),
            interaction("iz", T0 + 62, kind="identify", user_id="u2", anonymous_id="z"),
        ]
    )
    # when u3 is erased
    erased = await store.erase("acme", "u3")
    # then u2 and anon:z are no part of it
    assert erased.merged_ids == ()
    u2 = await store.get_candidate("acme", "u2", T0 + 62)
    assert u2 is not None and u2.merged_ids == ("anon:z",)
    assert sorted(c.message_id for c in u2.contributions) == ["u2b", "z1"]


async def test_an_id_erased_on_its_own_takes_the_ids_identified_as_it_after_its_alias_along(
    store: ScoreStore, redis_client: aioredis.Redis, redis_prefix: str
) -> None:
    # given u2 aliased into u1, then anon:s (browsing) identified as u2: folded into u1 through it
    await store.apply_batch([interaction("u1a", T0, user_id="u1"), alias("al1", "u2", "u1")])
    [_, merge] = await store.apply_batch(
        [
            interaction("s1", T0 + 10, event="Article Read", user_id=None, anonymous_id="s"),
            interaction("is", T0 + 20, kind="identify", user_id="u2", anonymous_id="s"),
        ]
    )
    assert (merge.outcome, merge.candidate_id) == ("merged", "u1")
    # when u2 is erased on its own (its records published)
    erased = await store.erase("acme", "u2", fence_at=at(30))
    await store.erasure_published(erased)
    # then anon:s, identified as u2, goes with it: named, fenced, no key left, out of u1's ids
    assert erased.merged_ids == ("anon:s",)
    fenced = await redis_client.hkeys(store.keys.erasing)  # type: ignore[misc]
    assert fence_id("acme", "anon:s").encode() in fenced
    keys = [k.decode() async for k in redis_client.scan_iter(match=f"{redis_prefix}*")]
    assert not [k for k in keys if "anon:s" in k or "{acme:u2}" in k]
    u1 = await store.get_candidate("acme", "u1", T0 + 30)
    assert u1 is not None and u1.merged_ids == ()
    # and anon:s browsing on starts a profile of its own, not one of the erased u2
    await store.apply_batch([interaction("s2", T0 + 40, user_id=None, anonymous_id="s")])
    s = await store.get_candidate("acme", "anon:s", T0 + 40)
    assert s is not None and s.candidate_id == "anon:s"
    assert [c.message_id for c in s.contributions] == ["s2"]
    assert await store.get_candidate("acme", "u2", T0 + 40) is None


async def test_an_id_erased_on_its_own_takes_along_a_chain_aliased_into_it_after_its_alias(
    store: ScoreStore, redis_client: aioredis.Redis, redis_prefix: str
) -> None:
    # given u2 aliased into u1, then u5 aliased into u2, then anon:t identified as u5: u5 and
    # anon:t went on into u1 (anon:t's merged_into is u5, u5's is u2)
    await store.apply_batch([interaction("u1a", T0, user_id="u1"), alias("al1", "u2", "u1")])
    await store.apply_batch([interaction("u5a", T0, user_id="u5"), alias("al5", "u5", "u2")])
    [_, merge] = await store.apply_batch(
        [
            interaction("t1", T0 + 1, user_id=None, anonymous_id="t"),
            interaction("it", T0 + 2, kind="identify", user_id="u5", anonymous_id="t"),
        ]
    )
    assert (merge.outcome, merge.candidate_id) == ("merged", "u1")
    # when u2 is erased on its own
    erased = await store.erase("acme", "u2", fence_at=at(30))
    await store.erasure_published(erased)
    # then both go with it, and u1 keeps only its own id
    assert erased.merged_ids == ("anon:t", "u5")
    keys = [k.decode() async for k in redis_client.scan_iter(match=f"{redis_prefix}*")]
    assert not [k for k in keys if any(i in k for i in ("{acme:u2}", "{acme:u5}", "anon:t"))]
    u1 = await store.get_candidate("acme", "u1", T0 + 30)
    assert u1 is not None and u1.merged_ids == ()


async def test_an_erase_repeated_before_publishing_returns_what_the_first_one_erased(
    store: ScoreStore, redis_client: aioredis.Redis, redis_prefix: str
) -> None:
    # given u1 (two events) with anon:x folded in and old-crm-id aliased in, erased once
    await store.apply_batch(
        [
            interaction("a1", T0, event="Article Read", user_id=None, anonymous_id="x"),
            interaction("u1", T0, event="Article Read"),
            interaction("u2", T0 + 1, event="Article Read"),
            interaction("o1", T0, event="Article Read", user_id="old-crm-id"),
            interaction("i1", T0 + 2, kind="identify", anonymous_id="x"),
        ]
    )
    alias = interaction("al1", T0 + 3, kind="alias").model_copy(update={"previousId": "old-crm-id"})
    await store.apply_batch([alias])
    first = await store.erase("acme", "u1")
    # when the erasure is repeated before its records were published (a retried DELETE)
    again = await store.erase("acme", "u1")
    # then it names the same merged ids and last sequence, although every key is gone
    assert first.merged_ids == ("anon:x", "old-crm-id") and first.last_sequence == 4
    assert (again.merged_ids, again.last_sequence) == (first.merged_ids, first.last_sequence)
    assert again.removed_keys == 0
    # and only the pending erasure is left, and it expires within 7 days
    keys = [k.decode() async for k in redis_client.scan_iter(match=f"{redis_prefix}*")]
    pending = f"{redis_prefix}{{acme:u1}}:e"
    assert [k for k in keys if "u1" in k or "old-crm-id" in k or "anon:x" in k] == [pending]
    assert 0 < await redis_client.ttl(pending) <= 7 * DAY


async def test_an_erase_after_its_records_were_published_finds_nothing(
    store: ScoreStore, redis_client: aioredis.Redis, redis_prefix: str
) -> None:
    # given u1 with anon:x folded in, erased and its records published
    await store.apply_batch(
        [
            interaction("a1", T0, event="Article Read", user_id=None, anonymous_id="x"),
            interaction("i1", T0, kind="identify", anonymous_id="x"),
        ]
    )
    await store.erasure_published(await store.erase("acme", "u1"))
    # when it is erased again
    again = await store.erase("acme", "u1")
    await store.erasure_published(again)
    # then there is nothing left to erase and no key is left behind
    assert (again.existed, again.merged_ids, again.last_sequence) == (False, (), 0)
    assert [k async for k in redis_client.scan_iter(match=f"{redis_prefix}*u1*")] == []


async def test_a_published_erasure_keeps_the_pending_entry_of_a_concurrent_wider_one(
    store: ScoreStore, redis_client: aioredis.Redis, redis_prefix: str
) -> None:
    # given an erasure of u1 that found no merged id
    await store.apply_batch([interaction("u1", T0, event="Article Read")])
    narrow = await store.erase("acme", "u1")
    # and a concurrent erasure that meanwhile found anon:x merged in (an identify in between)
    await store.apply_batch(
        [
            interaction("a1", T0, event="Article Read", user_id=None, anonymous_id="x"),
            interaction("i1", T0 + 1, kind="identify", anonymous_id="x"),
        ]
    )
    wide = await store.erase("acme", "u1")
    # when the first one's records are published
    await store.erasure_published(narrow)
    # then the pending entry stays for the second, whose records are not all published yet
    assert wide.merged_ids == ("anon:x",)
    assert (await store.erase("acme", "u1")).merged_ids == ("anon:x",)
    await store.erasure_published(wide)
    assert [k async for k in redis_client.scan_iter(match=f"{redis_prefix}*u1*")] == []
