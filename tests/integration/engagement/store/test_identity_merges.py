"""Identity merges (identify / alias) that would close a loop, chains and replays (real Redis).

Every event below happens at T0, so sums are exact without decay: A holds 4 points (an article),
B 2 (a job view), C 40 (an application), D 6 (a job view and an article).
"""

from __future__ import annotations

import asyncio
import logging
import math
import random
import uuid
from typing import Any

import pytest
import redis.asyncio as aioredis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engagement.model.log_privacy import hashed_id
from engagement.model.records import Interaction
from engagement.store.merge_store import MAX_HOPS
from engagement.store.redis_store import ScoreStore
from tests.unit.engagement.model.strategies import RULES, T0, alias, interaction, random_batches

EVENTS = {"A": ["Article Read"], "B": ["Job Viewed"], "C": ["Application Submitted"]}
EVENTS["D"] = ["Job Viewed", "Article Read"]
POINTS = {"A": 4.0, "B": 2.0, "C": 40.0, "D": 6.0}


def events_of(*ids: str, tag: str = "e", tenant: str = "acme") -> list[Interaction]:
    return [
        interaction(f"{tag}-{cand}-{k}", T0, event=name, user_id=cand, tenant=tenant)
        for cand in ids
        for k, name in enumerate(EVENTS[cand])
    ]


async def merged_into(store: ScoreStore, candidate: str, tenant: str = "acme") -> str | None:
    profile = store.keys.candidate(tenant, candidate).profile
    value = await store.redis.hget(profile, "m")  # type: ignore[misc]
    return None if value is None else value.decode()


async def holder(store: ScoreStore, candidate: str, tenant: str = "acme") -> str:
    """The candidate whose profile holds ``candidate``'s score (following merged_into)."""
    for _ in range(MAX_HOPS + 1):
        following = await merged_into(store, candidate, tenant)
        if following is None:
            return candidate
        candidate = following
    raise AssertionError(f"{candidate} does not resolve within {MAX_HOPS} redirects")


async def raw_of(store: ScoreStore, candidate: str, tenant: str = "acme") -> float:
    view = await store.get_candidate(tenant, candidate, T0)
    assert view is not None
    return view.state.raw


async def profiles(
    store: ScoreStore, ids: str | list[str], tenant: str = "acme"
) -> dict[str, dict[bytes, bytes]]:
    return {
        cand: await store.redis.hgetall(store.keys.candidate(tenant, cand).profile)  # type: ignore[misc]
        for cand in ids
    }


async def test_alias_back_into_an_id_merged_into_the_source_is_refused(
    store: ScoreStore, caplog: pytest.LogCaptureFixture
) -> None:
    # given A folded into B
    await store.apply_batch(events_of("A", "B"))
    await store.apply_batch([alias("al1", "A", "B")])
    # when an alias asks to fold B into A (which already resolves to B)
    with caplog.at_level(logging.WARNING, logger="engagement.store"):
        [back] = await store.apply_batch([alias("al2", "B", "A")])
    # then it is refused and nothing moves: B stays the candidate of both ids
    assert (back.outcome, back.candidate_id, back.merged_from) == ("conflict", "A", "B")
    assert back.after is None
    assert await merged_into(store, "B") is None
    assert await holder(store, "A") == "B"
    assert await raw_of(store, "B") == pytest.approx(6.0)
    # and a structured log line says why, naming the ids by their keyed hash (erasable ids)
    [line] = [
        r.__dict__ for r in caplog.records if r.__dict__.get("event") == "store.merge_refused"
    ]
    assert (line["reason"], line["source"], line["target"], line["messageId"]) == (
        "cycle",
        hashed_id("B", key=store.log_key),
        hashed_id("A", key=store.log_key),
        "al2",
    )


async def test_events_of_ids_whose_loop_was_refused_are_still_scored(store: ScoreStore) -> None:
    # given A folded into B and a refused alias of B back into A
    await store.apply_batch(events_of("A", "B"))
    await store.apply_batch([alias("al1", "A", "B")])
    await store.apply_batch([alias("al2", "B", "A")])
    # when both ids send events
    later = await store.apply_batch(events_of("A", "B", tag="later"))
    # then both are scored on B
    assert [(o.outcome, o.candidate_id) for o in later] == [("scored", "B"), ("scored", "B")]
    assert await raw_of(store, "A") == pytest.approx(12.0)


async def test_alias_closing_a_loop_of_three_ids_is_refused(store: ScoreStore) -> None:
    # given A folded into B, then B into C
    await store.apply_batch(events_of("A", "B", "C"))
    await store.apply_batch([alias("al1", "A", "B")])
    await store.apply_batch([alias("al2", "B", "C")])
    # when an alias asks to fold C into A
    [loop] = await store.apply_batch([alias("al3", "C", "A")])
    # then it is refused: C keeps everything, every id resolves to it and is scored there
    assert loop.outcome == "conflict" and await merged_into(store, "C") is None
    assert [await holder(store, cand) for cand in "ABC"] == ["C", "C", "C"]
    assert await raw_of(store, "A") == pytest.approx(46.0)
    later = await store.apply_batch(events_of("A", "B", "C", tag="later"))
    assert [(o.outcome, o.candidate_id) for o in later] == [("scored", "C")] * 3


async def test_merging_a_candidate_into_itself_through_a_chain_is_refused(
    store: ScoreStore,
) -> None:
    # given A folded into B, then B into C: A and B both resolve to C
    await store.apply_batch(events_of("A", "B", "C"))
    await store.apply_batch([alias("al1", "A", "B")])
    await store.apply_batch([alias("al2", "B", "C")])
    before = await profiles(store, "ABC")
    # when an alias asks to fold C into B, or into A (either resolves to C itself)
    outcomes = await store.apply_batch([alias("al3", "C", "B"), alias("al4", "C", "A")])
    # then both are refused and no profile changes
    assert [o.outcome for o in outcomes] == ["conflict", "conflict"]
    assert await profiles(store, "ABC") == before


async def test_loop_within_one_batch_keeps_the_first_merge_and_a_replay_changes_nothing(
    store: ScoreStore,
) -> None:
    # given A and B, and one batch folding A into B, then B into A
    await store.apply_batch(events_of("A", "B"))
    batch = [alias("al1", "A", "B"), alias("al2", "B", "A")]
    # when the batch is applied, then replayed
    first = await store.apply_batch(batch)
    state = await profiles(store, "AB")
    replay = await store.apply_batch(batch)
    # then the first merge wins, the second closes a loop and is refused, and the replay changes
    # nothing (not even a sequence number)
    assert [o.outcome for o in first] == ["merged", "conflict"]
    assert [o.outcome for o in replay] == ["duplicate", "conflict"]
    assert await profiles(store, "AB") == state
    assert await holder(store, "B") == "B" and await raw_of(store, "A") == pytest.approx(6.0)


async def test_merges_racing_into_a_loop_on_two_workers_leave_no_loop_and_lose_nothing(
    store: ScoreStore, redis_client: aioredis.Redis, redis_prefix: str
) -> None:
    # given A and B, and a second scorer worker on the same Redis (each with a connection open)
    other = ScoreStore(redis_client, prefix=redis_prefix, rules=RULES)
    await store.apply_batch(events_of("A", "B"))
    await asyncio.gather(redis_client.ping(), redis_client.ping())
    # when both workers fold A into B and B into A at the same moment
    await asyncio.gather(
        store.apply_batch([alias("al1", "A", "B")]), other.apply_batch([alias("al2", "B", "A")])
    )
    # then (whichever merge went ahead, if any) both ids resolve, their sums are all there once,
    # and later events of both are scored
    holders = {await holder(store, cand) for cand in "AB"}
    assert math.fsum([await raw_of(store, cand) for cand in holders]) == pytest.approx(6.0)
    later = await store.apply_batch(events_of("A", "B", tag="later"))
    assert [o.outcome for o in later] == ["scored", "scored"]


class RacedAfterItsScreen(ScoreStore):
    """A worker that another worker overtakes: the other's merges (``overtaking``) are applied
    after this one has screened its merges and before its step 1."""

    overtaking: list[Interaction]
    other: ScoreStore

    async def _merge_links(self, merges: list[Any]) -> Any:
        links = await super()._merge_links(merges)
        await self.other.apply_batch(self.overtaking)
        return links


async def test_merge_whose_loop_a_concurrent_merge_closed_is_undone_and_moves_nothing(
    store: ScoreStore, redis_client: aioredis.Redis, redis_prefix: str
) -> None:
    # given A and B, and a worker folding A into B that another worker overtakes with B into A
    await store.apply_batch(events_of("A", "B"))
    raced = RacedAfterItsScreen(redis_client, prefix=redis_prefix, rules=RULES)
    raced.other, raced.overtaking = store, [alias("al2", "B", "A")]
    # when the overtaken worker's merge runs (its screen saw no loop yet)
    [merge] = await raced.apply_batch([alias("al1", "A", "B")])
    # then step 2 finds the loop and undoes step 1: A holds both ids' points, once, and ranks
    assert (merge.outcome, merge.candidate_id, merge.merged_from) == ("conflict", "B", "A")
    assert merge.merged_source is not None and merge.merged_source.merged_into is None
    assert [await holder(store, cand) for cand in "AB"] == ["A", "A"]
    assert await raw_of(store, "A") == pytest.approx(6.0)
    page = await store.leaderboard("acme", now=T0)
    assert [e.candidate_id for e in page.entries] == ["A"]


async def test_merge_into_an_id_merged_elsewhere_folds_into_its_final_candidate(
    store: ScoreStore,
) -> None:
    # given A folded into B
    await store.apply_batch(events_of("A", "B", "C"))
    await store.apply_batch([alias("al1", "A", "B")])
    # when C is aliased to A
    [merge] = await store.apply_batch([alias("al2", "C", "A")])
    # then C's sums land on B, the candidate A resolves to, and C's later events follow
    assert (merge.outcome, merge.candidate_id, merge.merged_from) == ("merged", "B", "C")
    assert await raw_of(store, "B") == pytest.approx(46.0)
    [later] = await store.apply_batch(events_of("C", tag="later"))
    assert (later.outcome, later.candidate_id) == ("scored", "B")


async def test_replayed_merge_after_its_target_was_merged_onward_counts_once(
    store: ScoreStore,
) -> None:
    # given A folded into B, then B into C
    await store.apply_batch(events_of("A"))
    first = [alias("al1", "A", "B")]
    await store.apply_batch(first)
    await store.apply_batch([alias("al2", "B", "C")])
    # when the first merge is replayed (a crash before its offset was committed)
    [replay] = await store.apply_batch(first)
    # then it follows the chain to C and finds A already there
    assert (replay.outcome, replay.candidate_id) == ("duplicate", "C")
    assert await raw_of(store, "C") == pytest.approx(4.0)
    view = await store.get_candidate("acme", "C", T0)
    assert view is not None and view.merged_ids == ("A", "B")


async def test_merge_into_a_chain_too_long_to_redirect_is_refused(store: ScoreStore) -> None:
    # given B folded into C, C into D, D into E: B is three redirects from its candidate E
    await store.apply_batch(events_of("A", "B"))
    for k, (source, target) in enumerate(["BC", "CD", "DE"]):
        await store.apply_batch([alias(f"chain{k}", source, target)])
    # when A is aliased to B (its events would need four redirects)
    [merge] = await store.apply_batch([alias("al1", "A", "B")])
    # then the merge is refused, and A keeps its score and its events
    assert merge.outcome == "conflict" and await merged_into(store, "A") is None
    [later] = await store.apply_batch(events_of("A", tag="later"))
    assert (later.outcome, later.candidate_id) == ("scored", "A")
    assert await raw_of(store, "A") == pytest.approx(8.0)


IDS = sorted(POINTS)
merge_pairs = st.lists(
    st.tuples(st.sampled_from(IDS), st.sampled_from(IDS)).filter(lambda p: p[0] != p[1]),
    min_size=1,
    max_size=8,
)


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(merge_pairs, st.randoms(use_true_random=False))
async def test_any_aliases_in_any_batches_leave_no_loop_lose_nothing_and_replay_as_no_ops(
    store: ScoreStore, pairs: list[tuple[str, str]], rnd: random.Random
) -> None:
    # given four ids with events, in a tenant of this example's own
    tenant = f"t{uuid.uuid4().hex[:8]}"
    await store.apply_batch(events_of(*IDS, tenant=tenant))
    aliases = [alias(f"al{k}", s, t, tenant=tenant) for k, (s, t) in enumerate(pairs)]
    # when any aliases among them are applied in random batches, then replayed shuffled
    for batch in random_batches(aliases, rnd, 4):
        await store.apply_batch(batch)
    state = await profiles(store, IDS, tenant)
    for batch in random_batches(rnd.sample(aliases, k=len(aliases)), rnd, 4):
        await store.apply_batch(batch)
    # then the replay changed nothing, every id resolves, every point is held exactly once,
    # and later events of every id are scored
    assert await profiles(store, IDS, tenant) == state
    holders = {await holder(store, cand, tenant) for cand in IDS}
    raws = [await raw_of(store, cand, tenant) for cand in holders]
    assert math.isclose(math.fsum(raws), sum(POINTS.values()), rel_tol=1e-12)
    later = await store.apply_batch(events_of(*IDS, tag="later", tenant=tenant))
    assert {o.outcome for o in later} == {"scored"}
