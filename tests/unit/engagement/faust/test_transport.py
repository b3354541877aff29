"""The fast consumer's delivery (engagement.faust.transport): ``FastConsumer._deliver`` racing
only the deliveries that had to wait."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any

import pytest
from mode import Service

from engagement.faust.transport import FastConsumer
from tests.unit.engagement.faust.test_inline_delivery import new_future, settle


class Flow(Service):
    """What ``FastConsumer._deliver`` uses of its consumer: mode's ``wait_first`` (counted)
    and the ``suspend_flow`` event."""

    def __init__(self) -> None:
        super().__init__()
        self.suspend_flow = asyncio.Event()
        self.races = 0

    async def wait_first(self, *coros: Any, timeout: Any = None) -> Any:
        self.races += 1
        return await super().wait_first(*coros, timeout=timeout)


async def deliver_with(flow: Flow, delivery: Coroutine[Any, Any, Any]) -> None:
    await FastConsumer._deliver(flow, delivery)  # type: ignore[arg-type]


async def test_a_delivery_that_does_not_wait_completes_inline_without_a_race() -> None:
    done: list[str] = []

    async def deliver() -> None:
        done.append("delivered")

    flow = Flow()
    await deliver_with(flow, deliver())
    assert done == ["delivered"]
    assert flow.races == 0


async def test_a_delivery_failing_before_it_waits_raises_from_deliver() -> None:
    async def deliver() -> None:
        raise ValueError("undecodable")

    flow = Flow()
    with pytest.raises(ValueError, match="undecodable"):
        await deliver_with(flow, deliver())
    assert flow.races == 0


async def test_a_delivery_that_waits_is_raced_and_finishes_when_its_wait_ends() -> None:
    # given a delivery waiting for room in a full buffer
    room = new_future()
    done: list[str] = []

    async def deliver() -> None:
        await room
        done.append("delivered")

    flow = Flow()
    delivering = asyncio.create_task(deliver_with(flow, deliver()))
    await settle()
    assert (flow.races, delivering.done()) == (1, False)
    # when the buffer has room again
    room.set_result(None)
    await asyncio.wait_for(delivering, 5)
    # then the rest of the delivery ran
    assert done == ["delivered"]


async def test_a_waiting_delivery_is_abandoned_when_the_flow_is_suspended() -> None:
    # given a delivery waiting for room in a full buffer
    abandoned = asyncio.Event()

    async def deliver() -> None:
        try:
            await new_future()
        except asyncio.CancelledError:
            abandoned.set()
            raise

    flow = Flow()
    delivering = asyncio.create_task(deliver_with(flow, deliver()))
    await settle()
    # when the flow is suspended (a rebalance)
    flow.suspend_flow.set()
    # then the delivery returns and the waiting delivery is cancelled, as Faust's wait_first does
    await asyncio.wait_for(delivering, 5)
    await asyncio.wait_for(abandoned.wait(), 5)


async def test_a_delivery_failing_after_it_waited_raises_from_deliver() -> None:
    room = new_future()

    async def deliver() -> None:
        await room
        raise ValueError("undecodable")

    flow = Flow()
    delivering = asyncio.create_task(deliver_with(flow, deliver()))
    await settle()
    room.set_result(None)
    with pytest.raises(ValueError, match="undecodable"):
        await asyncio.wait_for(delivering, 5)
    assert flow.races == 1
