"""The webhook delivery queue on a real Redis: batch enqueue, and an attempt's recording that
claims the lane's next delivery in the same script (its token and lease rules unchanged)."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import redis.asyncio as aioredis

from engagement.model.webhooks import RetryPolicy, WebhookConfig, WebhookEndpoint
from services.notifier.attempts import Deliverer
from services.notifier.delivery_queue import Claim, Delivery, DeliveryQueue, Finish
from services.notifier.egress import Egress
from services.notifier.lanes import Lane
from services.notifier.metrics import NotifierMetrics
from tests.integration.notifier.conftest import SECRET, Receiver
from tests.support.server import serve

LEASE_MS = 30_000
T0 = 1_000_000


def deliveries(endpoint_id: str, *numbers: int) -> list[Delivery]:
    return [Delivery(f"d{n}-{endpoint_id}", endpoint_id, f"msg{n}", "t:c", b"{}") for n in numbers]


async def claim_one(queue: DeliveryQueue, endpoint_id: str, now_ms: int, token: str) -> Claim:
    return await queue.claim(
        endpoint_id=endpoint_id, now_ms=now_ms, lease_ms=LEASE_MS, limit=1, token=token
    )


async def test_a_batch_enqueue_queues_each_delivery_once_however_often_it_is_repeated(
    redis_client: aioredis.Redis, redis_prefix: str
) -> None:
    queue = DeliveryQueue(redis_client, prefix=redis_prefix, retention_s=3600)
    # given a batch queued, one of its deliveries since delivered
    assert await queue.enqueue_many(deliveries("a", 1, 2, 3), now_ms=T0) == 3
    first = (await claim_one(queue, "a", T0, "t1")).claimed[0]
    await queue.complete(first, Finish("delivered", T0 + 1))
    # when the batch is queued again, with a new delivery beside the repeated ones
    queued = await queue.enqueue_many(deliveries("a", 1, 2, 3, 4), now_ms=T0 + 5)
    # then only the new one is queued, and the delivered one stays delivered
    assert queued == 1
    assert (await queue.status(first.delivery_id))["status"] == "delivered"
    assert await queue.pending() == 3
    backlog = await queue.backlog(["a"])
    assert (backlog.endpoints["a"].pending, backlog.endpoints["a"].oldest_created_ms) == (3, T0)


async def test_a_batch_larger_than_one_script_call_is_queued_whole(
    redis_client: aioredis.Redis, redis_prefix: str
) -> None:
    queue = DeliveryQueue(redis_client, prefix=redis_prefix, retention_s=3600)
    batch = deliveries("a", *range(450)) + deliveries("b", *range(50))
    assert await queue.enqueue_many(batch, now_ms=T0) == 500
    backlog = await queue.backlog(["a", "b"])
    assert (backlog.pending, backlog.endpoints["a"].pending, backlog.endpoints["b"].pending) == (
        500,
        450,
        50,
    )


async def test_recording_an_attempt_claims_the_lanes_next_due_delivery_in_the_same_call(
    redis_client: aioredis.Redis, redis_prefix: str
) -> None:
    queue = DeliveryQueue(redis_client, prefix=redis_prefix, retention_s=3600)
    # given two deliveries of endpoint a and one of b, a's first claimed
    await queue.enqueue_many(deliveries("a", 1, 2) + deliveries("b", 3), now_ms=T0)
    first = (await claim_one(queue, "a", T0, "t1")).claimed[0]
    # when its success is recorded, claiming one more under a new token
    done, claim = await queue.complete(
        first, Finish("delivered", T0 + 10), claim=1, lease_ms=LEASE_MS, token="t2"
    )
    # then it is finished and a's other delivery is claimed (b's is not: another lane)
    assert done
    assert [(c.delivery_id, c.attempt, c.token) for c in claim.claimed] == [("d2-a", 1, "t2")]
    assert (await queue.status("d2-a"))["token"] == "t2"
    # with the lease rules of any claim: the lane's head is the claimed one's lease end
    assert claim.next_due_ms == T0 + 10 + LEASE_MS
    assert (await queue.status("d1-a"))["status"] == "delivered"
    assert (await queue.backlog(["a", "b"])).pending == 2


async def test_a_token_that_lost_its_delivery_finishes_nothing_and_its_slot_still_claims(
    redis_client: aioredis.Redis, redis_prefix: str
) -> None:
    queue = DeliveryQueue(redis_client, prefix=redis_prefix, retention_s=3600)
    await queue.enqueue_many(deliveries("a", 1), now_ms=T0)
    # given an attempt whose lease ran out, the delivery claimed again by another worker
    stale = (await claim_one(queue, "a", T0, "old")).claimed[0]
    later = T0 + LEASE_MS + 1
    again = (await claim_one(queue, "a", later, "new")).claimed[0]
    assert again.delivery_id == stale.delivery_id
    await queue.enqueue_many(deliveries("a", 2), now_ms=later)
    # when the first worker records its outcome, claiming its slot's next delivery
    done, claim = await queue.complete(
        stale, Finish("delivered", later + 1), claim=1, lease_ms=LEASE_MS, token="next"
    )
    # then the delivery stays the second worker's, in flight
    assert not done
    state = await queue.status(stale.delivery_id)
    assert (state["status"], state["token"], state["attempt"]) == ("inflight", "new", "2")
    # and the slot still gets the lane's next due delivery
    assert [c.delivery_id for c in claim.claimed] == ["d2-a"]


async def test_a_retry_is_rescheduled_and_not_claimed_back_before_it_is_due(
    redis_client: aioredis.Redis, redis_prefix: str
) -> None:
    queue = DeliveryQueue(redis_client, prefix=redis_prefix, retention_s=3600)
    await queue.enqueue_many(deliveries("a", 1), now_ms=T0)
    first = (await claim_one(queue, "a", T0, "t1")).claimed[0]
    retry = Finish("pending", T0 + 10, next_due_ms=T0 + 5000, last_status=500)
    done, claim = await queue.complete(first, retry, claim=1, lease_ms=LEASE_MS, token="t2")
    assert done
    assert (claim.claimed, claim.next_due_ms) == ([], T0 + 5000)
    assert (await claim_one(queue, "a", T0 + 5000, "t3")).claimed[0].attempt == 2


async def test_recording_without_a_claim_claims_nothing(
    redis_client: aioredis.Redis, redis_prefix: str
) -> None:
    queue = DeliveryQueue(redis_client, prefix=redis_prefix, retention_s=3600)
    await queue.enqueue_many(deliveries("a", 1, 2), now_ms=T0)
    first = (await claim_one(queue, "a", T0, "t1")).claimed[0]
    done, claim = await queue.complete(first, Finish("delivered", T0 + 1))
    assert done and claim.claimed == []
    assert (await queue.status("d2-a"))["status"] == "pending"


class CountingQueue(DeliveryQueue):
    """The real queue, counting its claim and complete round trips."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.calls = {"claim": 0, "complete": 0}

    async def claim(self, **kwargs: Any) -> Claim:
        self.calls["claim"] += 1
        return await super().claim(**kwargs)

    async def complete(self, *args: Any, **kwargs: Any) -> tuple[bool, Claim]:
        self.calls["complete"] += 1
        return await super().complete(*args, **kwargs)


async def test_a_busy_lane_makes_one_round_trip_per_attempt(
    redis_client: aioredis.Redis, redis_prefix: str
) -> None:
    queue = CountingQueue(redis_client, prefix=redis_prefix, retention_s=3600)
    receiver = Receiver()
    with serve(receiver) as base:
        endpoint = WebhookEndpoint(id="a", url=f"{base}/hooks/a", secret=SECRET, allow_private=True)
        config = WebhookConfig(require_https=False, endpoints=(endpoint,))
        # given 60 deliveries queued for one endpoint, 4 in flight at most
        await queue.enqueue_many(deliveries("a", *range(60)), now_ms=T0)
        async with Egress(timeout=10) as egress:
            deliverer = Deliverer(
                queue, config, RetryPolicy(), egress, _no_dlq, NotifierMetrics(),
                lease_s=30, concurrency=4,
            )  # fmt: skip
            lane = Lane("a", deliverer, poll=60.0, retry_max=0.1)  # no idle polls meanwhile
            # when its lane has sent and recorded them all
            task = asyncio.create_task(lane.run())
            try:
                while await queue.pending():  # noqa: ASYNC110 - Redis tells, no event
                    await asyncio.sleep(0.02)
            finally:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
    # then each was delivered once, and each recording claimed the next: besides the lane's
    # first claims, about one more for each slot that found nothing left at the end (27 when
    # the recordings claim nothing: slots freed one or a few at a time)
    assert len({r.headers["webhook-id"] for r in receiver.on("/hooks/a")}) == 60
    assert queue.calls["claim"] <= 12, queue.calls


async def _no_dlq(key: bytes, value: bytes) -> None:
    raise AssertionError("every delivery of this test succeeds")
