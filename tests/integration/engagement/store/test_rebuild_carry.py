"""``engagement.tools.rebuild.carry_sequences``: a rebuilt store takes over the replaced one's sequences
and the notifier's state (real Redis; the notifier's own stores write and read that state)."""

from __future__ import annotations

import redis.asyncio as aioredis

from engagement.model.alerts import Notified
from engagement.store.erasure_fence import fence_id
from engagement.store.redis_store import ScoreStore
from engagement.tools.rebuild import carry_sequences
from services.notifier.delivery_queue import DeliveryQueue
from services.notifier.state import NotifiedStore
from tests.integration.engagement.store.test_store_behaviour import at
from tests.unit.engagement.model.strategies import RULES, T0, interaction

RETENTION = 3600


def stores(redis: aioredis.Redis, old: str, new: str) -> tuple[ScoreStore, ScoreStore]:
    """The replaced store and the rebuilt one."""
    return ScoreStore(redis, prefix=old, rules=RULES), ScoreStore(redis, prefix=new, rules=RULES)


async def test_rebuilt_sequences_are_raised_to_the_replaced_ones_and_ranked_with_them(
    redis_client: aioredis.Redis, redis_prefix: str
) -> None:
    # given a live store where u1 has 3 events, u2 one, gone one (not in the rebuild: its events
    # are past the topic's retention), and a rebuild where u1 has 1 (the new rules dropped two)
    # and u2 has 4 (more than the replaced store: it keeps its own)
    old, new = redis_prefix, f"{redis_prefix}v2:"
    live, rebuilt = stores(redis_client, old, new)
    await live.apply_batch(
        [interaction(f"m{k}", T0 + k, user_id="u1") for k in range(3)]
        + [interaction("n0", T0, user_id="u2"), interaction("g0", T0, user_id="gone")]
    )
    await rebuilt.apply_batch(
        [interaction("m0", T0, user_id="u1")]
        + [interaction(f"n{k}", T0 + k, user_id="u2") for k in range(4)]
    )
    # when the sequences are carried over
    report = await carry_sequences(rebuilt, old)
    # then u1's profile and rank entry are at the replaced store's sequence, u2's stay its own
    assert (report.seen, report.raised, report.missing) == (3, 1, ["acme:gone"])
    u1 = await rebuilt.get_candidate("acme", "u1", T0 + 10)
    u2 = await rebuilt.get_candidate("acme", "u2", T0 + 10)
    assert u1 is not None and u2 is not None
    assert (u1.state.sequence, u2.state.sequence) == (3, 4)
    seqs = await redis_client.hgetall(rebuilt.keys.sequences("acme"))
    assert (seqs[b"u1"], seqs[b"u2"]) == (b"3", b"4")
    assert seqs[b"gone"] == b"1"  # listed for a later rebuild (in no tier set: see below)
    # and u1 is still ranked with its rebuilt score (the rank update was applied, not refused)
    board = await rebuilt.leaderboard("acme", now=T0 + 10)
    assert [(e.candidate_id, e.score) for e in board.entries] == [
        ("u2", u2.state.score),
        ("u1", u1.state.score),
    ]
    # and a second run changes nothing
    again = await carry_sequences(rebuilt, old)
    assert (again.seen, again.raised) == (3, 0)
    # and the first event after the switch gets a sequence past every one published before,
    # for a candidate that was not rebuilt too (it is no candidate until then)
    assert await rebuilt.get_candidate("acme", "gone", T0 + 10) is None
    after = await rebuilt.apply_batch(
        [interaction("m9", T0 + 20, user_id="u1"), interaction("g1", T0 + 20, user_id="gone")]
    )
    assert [o.after.sequence for o in after if o.after is not None] == [4, 2]


async def test_the_notifiers_state_is_copied_where_the_rebuild_has_none(
    redis_client: aioredis.Redis, redis_prefix: str
) -> None:
    # given what a notifier on the replaced prefix holds: the tier it announced per candidate,
    # its sweep watermark and a pending webhook delivery
    old, new = redis_prefix, f"{redis_prefix}v2:"
    live, rebuilt = stores(redis_client, old, new)
    await live.apply_batch(
        [interaction("m0", T0, user_id="u1"), interaction("m1", T0, user_id="u2")]
    )
    await rebuilt.apply_batch([interaction("m0", T0, user_id="u1")])
    notified_old = NotifiedStore(redis_client, prefix=old)
    await notified_old.store(
        {"acme:u1": (Notified("hot", 1), 3, b""), "acme:u2": (Notified("warm", 1), 2, b"")},
        base={},
    )
    await notified_old.set_watermark("acme", T0)
    queue_old = DeliveryQueue(redis_client, prefix=old, retention_s=RETENTION)
    await queue_old.enqueue(delivery_id="d1", endpoint_id="ep", msg_id="alrt_1",
                            record_key="acme:u1", body=b"{}", now_ms=1000)  # fmt: skip
    # and the rebuilt prefix already has a state of u2 of its own
    notified_new = NotifiedStore(redis_client, prefix=new)
    await notified_new.store({"acme:u2": (Notified("cold", 7), 1, b"")}, base={})
    # when the rebuild is finished
    report = await carry_sequences(rebuilt, old)
    # then a notifier on the rebuilt prefix finds u1's state, keeps its own of u2,
    assert (await notified_new.load(["acme:u1", "acme:u2"])).states == {
        "acme:u1": Notified("hot", 1),
        "acme:u2": Notified("cold", 7),
    }
    # and goes on sweeping and delivering from where the replaced one was
    assert await notified_new.watermark("acme") == T0
    queue_new = DeliveryQueue(redis_client, prefix=new, retention_s=RETENTION)
    claim = await queue_new.claim(endpoint_id="ep", now_ms=2000, lease_ms=1000, limit=10, token="t")
    [claimed] = claim.claimed
    assert (claimed.delivery_id, claimed.msg_id) == ("d1", "alrt_1")
    assert report.notifier_keys == 5  # the watermark, the delivery, the due set, its lane and age
    assert (await carry_sequences(rebuilt, old)).notifier_keys == 0  # copied once


async def test_erasure_fences_raised_on_the_replaced_prefix_hold_on_the_rebuilt_one(
    redis_client: aioredis.Redis, redis_prefix: str
) -> None:
    # given ids erased through the API while ingest still wrote the replaced prefix (u1, u2, u3),
    # and fences the rebuild raised itself for the requests it replayed: u2's of an earlier
    # DELETE, u3's of a later one
    old, new = redis_prefix, f"{redis_prefix}v2:"
    live, rebuilt = stores(redis_client, old, new)
    await live.raise_fences("acme", ["u1", "u2", "u3"], at(100))
    await rebuilt.raise_fences("acme", ["u2"], at(50))
    await rebuilt.raise_fences("acme", ["u3"], at(150))
    await redis_client.hset(live.keys.erasing, "unreadable", "")  # a value no writer of ours writes
    assert await rebuilt.fences(T0 + 200) == {  # cached now
        fence_id("acme", "u2"): T0 + 50,
        fence_id("acme", "u3"): T0 + 150,
    }
    # when the rebuild is finished
    report = await carry_sequences(rebuilt, old)
    # then the rebuilt store withholds each id's events from before its latest DELETE
    assert report.fences == 2
    assert await rebuilt.fences(T0 + 200) == {
        fence_id("acme", "u1"): T0 + 100,
        fence_id("acme", "u2"): T0 + 100,
        fence_id("acme", "u3"): T0 + 150,
    }
    assert (await carry_sequences(rebuilt, old)).fences == 0
