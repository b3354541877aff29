"""The retry policy of every consumer's batch: outages wait, poison records are set aside.

Invariant: a record leaves a worker's hands only done or in the DLQ; an outage never sends one
to the DLQ, and one bad record never holds up the others. So:

* a call that fails with an outage (``engagement.faust.outages``) is retried where it is, backing off,
  until it succeeds (``retry_outages``): nothing is lost while Redis or Kafka is away;
* any other failure is raised as ``Failed`` and fails the attempt at the records in hand;
  ``isolate`` tries them again a few times, then narrows them down by halves to the record that
  fails, tries it as often, and hands it to ``quarantine``. Every step of a batch is idempotent,
  so trying records again changes nothing that was done.

A batch of n records with one poison record costs ``retries + 1`` failed attempts at the batch,
one at each of the log2(n) halves holding it, and ``retries + 1`` at the record.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

from engagement.faust.outages import is_outage

R = TypeVar("R")
T = TypeVar("T")


class Failed(Exception):
    """A step (``what``) failed for a reason that is no outage: the records in hand are suspect."""

    def __init__(self, what: str, error: BaseException) -> None:
        super().__init__(what, error)
        self.what, self.error = what, error

    def __str__(self) -> str:
        return f"{self.what}: {describe(self.error)}"


OnFailure = Callable[[str, BaseException, float], None]  # (step, error, seconds until the retry)


def describe(error: BaseException) -> str:
    """``Type: message`` of an error (redis-py's own repr drops the message)."""
    return f"{type(error).__name__}: {error}"


async def retry_outages(
    what: str,
    call: Callable[[], Awaitable[T]],
    *,
    on_outage: OnFailure,
    retry_max: float,
    forever: bool = False,
) -> T:
    """``call()``, retried through outages (backing off up to ``retry_max`` seconds) until it
    succeeds; any other failure is raised as ``Failed`` (``forever``: retried as well)."""
    delay = 0.05
    while True:
        try:
            return await call()
        except Exception as exc:
            if not (forever or is_outage(exc)):
                raise Failed(what, exc) from exc
            on_outage(what, exc, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, retry_max)


async def isolate(
    records: Sequence[R],
    *,
    process: Callable[[Sequence[R]], Awaitable[None]],
    quarantine: Callable[[R, Failed], Awaitable[None]],
    on_failure: OnFailure,
    retries: int,
    retry_max: float,
    tries: int | None = None,
) -> None:
    """``process(records)``, tried ``tries`` times (default ``retries + 1``) while it fails for a
    reason that is no outage; then each half of the records once, the failing ones narrowed down
    further, to the record that fails: tried ``retries + 1`` times, then ``quarantine``\\ d."""
    delay = 0.05
    for _ in range(retries + 1 if tries is None else tries):
        try:
            await process(records)
            return
        except Failed as failed:
            error = failed
        except Exception as exc:  # raised outside any retried call: a bug of ours
            error = Failed("handler", exc)
        on_failure(error.what, error.error, delay)
        await asyncio.sleep(delay)
        delay = min(delay * 2, retry_max)
    if len(records) == 1:
        await quarantine(records[0], error)
        return
    half = len(records) // 2
    for part in (records[:half], records[half:]):
        await isolate(
            part,
            process=process,
            quarantine=quarantine,
            on_failure=on_failure,
            retries=retries,
            retry_max=retry_max,
            tries=1 if len(part) > 1 else None,
        )


class Streak:
    """A run of failures of one loop: its first bug (a failure that is no outage) is logged with
    its traceback, the rest on one line each, so a loop failing every tick does not flood the log."""

    def __init__(self) -> None:
        self.traced = False

    def traceback_of(self, error: BaseException) -> BaseException | None:
        """``error`` when its traceback is to be logged now (the streak's first bug), else None."""
        if self.traced or is_outage(error):
            return None
        self.traced = True
        return error

    def ended(self) -> None:
        """The loop succeeded: the next failure starts a new streak."""
        self.traced = False
