"""The consumers' retry policy (engagement.faust.poison), on plain records: outages wait, a
record that keeps failing is narrowed down to and set aside, the others go on."""

from __future__ import annotations

from collections.abc import Sequence

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError

from engagement.faust.poison import Failed, Streak, isolate, retry_outages


class Run:
    """A batch processor failing on the records in ``poison``; it keeps what it did."""

    def __init__(self, poison: set[int]) -> None:
        self.poison = poison
        self.done: list[int] = []
        self.attempts = 0
        self.quarantined: list[tuple[int, str]] = []
        self.failures: list[str] = []

    async def process(self, records: Sequence[int]) -> None:
        self.attempts += 1
        if self.poison & set(records):
            raise Failed("redis", TypeError("a bug"))
        self.done.extend(records)

    async def quarantine(self, record: int, failed: Failed) -> None:
        self.quarantined.append((record, str(failed)))

    def failed(self, what: str, error: BaseException, delay: float) -> None:
        self.failures.append(what)


async def run(records: list[int], poison: set[int], retries: int = 2) -> Run:
    state = Run(poison)
    await isolate(
        records,
        process=state.process,
        quarantine=state.quarantine,
        on_failure=state.failed,
        retries=retries,
        retry_max=0.0,
    )
    return state


async def test_a_batch_without_poison_is_processed_once() -> None:
    state = await run(list(range(10)), set())
    assert (state.done, state.attempts, state.quarantined) == (list(range(10)), 1, [])


async def test_only_the_poison_records_are_set_aside_and_the_rest_are_done_in_order() -> None:
    state = await run(list(range(16)), {3, 12})
    assert [r for r, _ in state.quarantined] == [3, 12]
    assert state.done == [r for r in range(16) if r not in {3, 12}]
    assert state.quarantined[0][1] == "redis: TypeError: a bug"


async def test_a_failing_record_is_tried_retries_plus_one_times_before_it_is_set_aside() -> None:
    state = await run([7], {7}, retries=3)
    assert (state.attempts, state.quarantined[0][0]) == (4, 7)
    assert state.failures == ["redis"] * 4


async def test_a_failure_that_clears_on_a_retry_sets_nothing_aside() -> None:
    state = Run(set())
    flaky = iter([True, False])

    async def process(records: Sequence[int]) -> None:
        if next(flaky):
            raise Failed("kafka", ValueError("once"))
        state.done.extend(records)

    await isolate(
        [1, 2],
        process=process,
        quarantine=state.quarantine,
        on_failure=state.failed,
        retries=1,
        retry_max=0.0,
    )
    assert (state.done, state.quarantined) == ([1, 2], [])


async def test_an_outage_is_retried_in_place_and_anything_else_raised_as_failed() -> None:
    calls = iter([RedisConnectionError("down"), RedisConnectionError("down"), "ok"])
    seen: list[str] = []

    async def call() -> str:
        value = next(calls)
        if isinstance(value, Exception):
            raise value
        return value

    def outage(what: str, error: BaseException, delay: float) -> None:
        seen.append(what)

    assert await retry_outages("redis", call, on_outage=outage, retry_max=0.0) == "ok"
    assert seen == ["redis", "redis"]

    async def bug() -> None:
        raise KeyError("x")

    with pytest.raises(Failed) as failed:
        await retry_outages("redis", bug, on_outage=outage, retry_max=0.0)
    assert (failed.value.what, type(failed.value.error)) == ("redis", KeyError)


def test_a_streak_logs_the_traceback_of_its_first_bug_only() -> None:
    streak = Streak()
    down, bug = RedisConnectionError("down"), TypeError("bug")
    assert streak.traceback_of(down) is None  # an outage: never a traceback
    assert streak.traceback_of(bug) is bug
    assert streak.traceback_of(TypeError("again")) is None
    streak.ended()
    assert streak.traceback_of(bug) is bug
