"""What a worker's handlers hear of its life: that it is stopping, before Faust waits for them.

Faust stops a worker by waiting until every batch in hand is acked; a handler retrying an
outage never acks, so SIGTERM was not enough. The worker runs the ``on_stop`` callbacks first;
a handler's ``StopSwitch`` then cancels the batch in hand, and the agent loop
(``engagement.faust.streams.handle_batches``) gives it up unacked.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Awaitable, Callable
from typing import Any

import faust

_ON_STOP: weakref.WeakKeyDictionary[faust.App, list[Callable[[], None]]] = (
    weakref.WeakKeyDictionary()
)


def on_stop(app: faust.App, callback: Callable[[], None]) -> None:
    """Call ``callback`` as soon as the worker running ``app`` starts stopping (SIGTERM), before
    Faust waits for the batches in hand: a handler told to stop gives its batch up."""
    _ON_STOP.setdefault(app, []).append(callback)


def stopping(app: faust.App) -> None:
    """Run the ``on_stop`` callbacks of ``app`` (the worker does, first thing when it stops)."""
    for callback in _ON_STOP.get(app, []):
        callback()


class Stopped(Exception):
    """Raised by a handler told to stop (the worker is stopping) before its batch was done."""


class StopSwitch:
    """Lets a handler give up the batch in hand when its worker stops (``stop``), even while it
    retries an outage: the batch is not acked, and its partition's next owner replays it."""

    def __init__(self) -> None:
        self.stopping = False
        self._task: asyncio.Task[Any] | None = None

    def stop(self) -> None:
        """Give the batch in hand up now, and take no other (``run`` raises ``Stopped``)."""
        self.stopping = True
        if self._task is not None:
            self._task.cancel()

    async def run(self, call: Callable[[], Awaitable[None]]) -> None:
        """Await ``call()`` unless stopped; raises ``Stopped`` if stopped before it returned."""
        if self.stopping:
            raise Stopped
        self._task = task = asyncio.current_task()
        try:
            await call()
        except asyncio.CancelledError:
            if not self.stopping or task is None:
                raise
            task.uncancel()  # cancelled by stop(), not by the worker: the batch is given up
            raise Stopped from None
        finally:
            self._task = None
