"""Handing a consumed message to its stream without Faust's coroutines, for the fast consumer's
drain loop (``engagement.faust.transport.FastConsumer``).

* Cheap delivery. Faust's drain loop hands every message to its stream with
  ``wait_first(callback(message), suspend_flow.wait())``: four tasks and an ``asyncio.wait`` per
  message, more CPU than the rest of a batch's processing. The fast consumer runs a delivery
  inline (``FastConsumer._deliver``) and only a delivery that has to wait (its stream's buffer is full, or the flow is
  suspended for a rebalance) is raced against the suspension as Faust does: ``Resumed`` finishes
  the coroutine it started by hand.
* No coroutine per message at all when nothing can wait. For a partition whose channels are all
  raw topics (``faust_app.RawSchema``, whose ``decode`` carries its event factory),
  ``compile_put_inline`` does what the conductor's handler (Faust's Cython ``ConductorHandler``)
  does -- count the references, make the event, ``put_nowait_enhanced`` it with the handler's own
  pressure callbacks -- without its coroutines, as long as the handler would not wait: the
  callback map unlocked, the flow active, the producer buffer under its limit, and room in every
  channel's buffer. Otherwise the message goes through Faust's handler and ``_deliver``.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Generator
from typing import Any

from faust.types import TP, AppT, Message


class Resumed:
    """Awaitable finishing a coroutine that was started by hand and suspended on ``pending``
    (what its first ``send(None)`` yielded): the awaiting task waits for what it waits for."""

    __slots__ = ("coro", "pending")

    def __init__(self, coro: Coroutine[Any, Any, Any], pending: Any) -> None:
        self.coro, self.pending = coro, pending

    def __await__(self) -> Generator[Any, None, Any]:
        coro, pending = self.coro, self.pending
        while True:
            try:
                yield pending
            except GeneratorExit:
                coro.close()
                raise
            except BaseException as exc:  # thrown into the task (cancellation): pass it on
                try:
                    pending = coro.throw(exc)
                except StopIteration as stop:
                    return stop.value
            else:
                try:
                    pending = coro.send(None)
                except StopIteration as stop:
                    return stop.value


def compile_put_inline(app: AppT) -> Callable[[Message], bool]:  # noqa: C901 -- mirrors Faust 0.15.3 step by step (engagement/faust/README.md)
    """Return ``put(message) -> bool``: the conductor's delivery done without a coroutine
    when it would not wait, False (nothing done) when it would or may; see the module docstring."""
    conductor = app.topics
    lock = getattr(conductor, "_tp_to_callback_lock", None)
    handlers = getattr(conductor, "_tp_to_callback", None)
    if lock is None or handlers is None or app.client_only or app.conf.producer_threaded:
        return lambda message: False
    flow_active = app.flow_control.is_active
    buffer = app.producer.buffer
    # per partition: its handler, when the handler was built, and what it delivers with
    routes: dict[TP, tuple[Any, tuple[tuple[Any, Any], ...], Any, Any]] = {}

    def route(tp: TP, handler: Any) -> tuple[Any, tuple[tuple[Any, Any], ...], Any, Any]:
        # a handler is built for a fixed set of channels: a change of subscription or
        # assignment rebuilds them all (Conductor._update_callback_map)
        channels = getattr(handler, "channels", None)  # None: not Faust's Cython handler
        targets = tuple(
            (getattr(channel.decode, "make_event", None), channel.queue)
            for channel in channels or ()
        )
        if channels is None or any(make_event is None for make_event, _ in targets):
            routes[tp] = (handler, (), None, None)  # not ours to deliver
        else:
            routes[tp] = (handler, targets, handler.on_pressure_high, handler.on_pressure_drop)
        return routes[tp]

    def put(message: Message) -> bool:
        # Faust's handler would first wait for the callback map's lock, the flow (suspended
        # during a rebalance) and a producer buffer over its limit: any of those -> Faust's
        if lock.locked() or lock._waiters or not flow_active():
            return False
        if len(buffer.pending._queue) > buffer.max_messages:  # type: ignore[attr-defined]
            return False
        tp = message.tp
        handler = handlers.get(tp)
        if handler is None:  # unassigned partition: Faust's raises
            return False
        cached = routes.get(tp)
        if cached is None or cached[0] is not handler:
            cached = route(tp, handler)
        _, targets, on_pressure_high, on_pressure_drop = cached
        if on_pressure_high is None or len(targets) != len(handler.channels):
            return False
        for _, queue in targets:
            if queue.full():  # Faust's waits for room, raced against the flow
                return False
        if targets:
            message.refcount += len(targets)  # Message.incref, as Faust's handler does
            key, value, headers = message.key, message.value, message.headers
            for make_event, queue in targets:
                queue.put_nowait_enhanced(
                    make_event(key, value, headers, message),
                    on_pressure_high=on_pressure_high,
                    on_pressure_drop=on_pressure_drop,
                )
        return True

    return put
