"""Inline delivery (engagement.faust.inline_delivery): a hand-started coroutine finished by
``Resumed``."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any

import pytest

from engagement.faust.inline_delivery import Resumed


def started(coro: Coroutine[Any, Any, Any]) -> Resumed:
    """Run ``coro`` by hand up to its first suspension, as ``FastConsumer._deliver`` does."""
    return Resumed(coro, coro.send(None))


async def settle() -> None:
    """Let every ready callback and task step run."""
    for _ in range(5):
        await asyncio.sleep(0)


def new_future() -> asyncio.Future[Any]:
    return asyncio.get_running_loop().create_future()


async def test_resumed_returns_what_the_coroutine_returns_after_one_wait() -> None:
    # given a coroutine suspended on a future
    ready = new_future()

    async def deliver() -> int:
        return (await ready) * 2

    task = asyncio.ensure_future(started(deliver()))
    await settle()
    assert not task.done()
    # when the future resolves
    ready.set_result(21)
    # then the awaiting task gets the coroutine's return value
    assert await task == 42


async def test_resumed_follows_the_coroutine_through_several_waits() -> None:
    # given a coroutine that waits on three futures, bare yields and a timer in turn
    futures = [new_future() for _ in range(3)]

    async def deliver() -> list[int]:
        seen = []
        for future in futures:
            seen.append(await future)
            await asyncio.sleep(0)
        await asyncio.sleep(0.001)
        return seen

    task = asyncio.ensure_future(started(deliver()))
    # when each future resolves in turn, the task waits for the next one
    for n, future in enumerate(futures):
        await settle()
        assert not task.done()
        future.set_result(n)
    # then the coroutine saw every result and its return value comes out
    assert await task == [0, 1, 2]


async def test_an_error_raised_after_suspending_reaches_the_awaiting_task() -> None:
    ready = new_future()

    async def deliver() -> None:
        await ready
        raise LookupError("no such partition")

    task = asyncio.ensure_future(started(deliver()))
    await settle()
    ready.set_result(None)
    with pytest.raises(LookupError, match="no such partition"):
        await task


async def test_a_failed_future_raises_inside_the_coroutine_which_may_handle_it() -> None:
    ready = new_future()

    async def deliver() -> str:
        try:
            await ready
        except ValueError:
            return "handled"
        return "not raised"

    task = asyncio.ensure_future(started(deliver()))
    await settle()
    ready.set_exception(ValueError("bad record"))
    assert await task == "handled"


async def test_cancelling_the_awaiting_task_cancels_the_coroutine() -> None:
    # given a coroutine waiting for something that never comes
    seen: list[str] = []

    async def deliver() -> None:
        try:
            await new_future()
        except asyncio.CancelledError:
            seen.append("cancelled")
            raise
        finally:
            seen.append("finally")

    task = asyncio.ensure_future(started(deliver()))
    await settle()
    # when the task awaiting it is cancelled
    task.cancel()
    # then the cancellation ran the coroutine's handler and clean-up, and ended the task
    with pytest.raises(asyncio.CancelledError):
        await task
    assert seen == ["cancelled", "finally"]
    assert task.cancelled()


async def test_a_coroutine_may_keep_waiting_while_it_handles_a_cancellation() -> None:
    # given a coroutine whose clean-up after a cancellation waits on a future itself
    cleanup = new_future()

    async def deliver() -> None:
        try:
            await new_future()
        except asyncio.CancelledError:
            await cleanup
            raise

    task = asyncio.ensure_future(started(deliver()))
    await settle()
    # when the task is cancelled, it waits for the clean-up
    task.cancel()
    await settle()
    assert not task.done()
    # then it ends, cancelled, once the clean-up is done
    cleanup.set_result(None)
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_closing_the_awaiting_coroutine_closes_the_hand_started_one() -> None:
    seen: list[str] = []

    async def deliver() -> None:
        try:
            await new_future()
        finally:
            seen.append("finally")

    async def awaiting(resumed: Resumed) -> Any:
        return await resumed

    delivery = deliver()  # held here, so only Resumed can close it
    driver = awaiting(started(delivery))
    driver.send(None)
    driver.close()
    assert seen == ["finally"]
