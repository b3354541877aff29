"""Faust's stream with a cheaper ``take_events`` for a worker's agents.

Faust 0.15.3's ``Stream.take_events`` runs the stream's iterator in a background task that pulls
one event at a time from the channel's buffer (a loop round trip, ``sleep(0)``, the buffering
processor and the sensors for each), and acks the batch one event at a time through
``Stream.ack`` -> ``Event.ack`` -> ``Message.ack`` -> ``Consumer.ack``, taking the ack lock
twice for each. ``FastStream.take_events`` gives the same batches from the agent's own task:

* it waits for a batch the same way -- until ``max_`` events are there or ``within`` seconds
  have passed since it started waiting, yielding only a non-empty batch, and stops with the
  stream;
* it takes each event from the buffer as the (Cython) stream iterator does: an event fetched
  before a rebalance (another consumer generation, or the flow suspended) is skipped, not acked,
  the others are tracked as unacked (what a rebalance waits for, ``stream_wait_empty``) and
  counted;
* once the agent asks for the next batch it acks the batch as ``Stream.ack`` does for each
  event, under one acquisition of the ack lock, and wakes the consumer's ack waiter once. Unlike
  Faust's, a batch whose agent is cancelled or closes the generator is not acked (at-least-once:
  its offsets are never committed before the handler returned).

The stream sensors (``on_stream_event_in``/``out``, ``on_message_in``/``out``) are called as
Faust calls them, except when the app's only sensor is ``QuietMonitor``, whose are no-ops. A
value in the buffer that is not an event crashes the stream as Faust's buffering processor
does. The ``StopAsyncIteration`` a stopping actor throws into the channel ends the iteration
(after the batch taken so far); another error thrown into it is raised to the agent (where
Faust's background task would end the stream silently). Streams with processors, joins or combined streams, or without
a ``within``, use Faust's ``take_events``. A batch the agent gives up (closing the generator
while it handles it: ``handle_batches``) is neither acked nor waited for: a stopping worker
does not wait for a batch that cannot finish (a handler retrying an outage), and the partition's
next owner replays it.

``handle_batches`` is the agent loop of every worker: batches to the handler, until it stops.

Installed as the ``Stream`` setting by ``engagement.faust.app.faust_app``.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Awaitable, Callable, Sequence
from contextlib import aclosing
from time import monotonic
from typing import Any

from faust import Stream
from faust.transport.consumer import Consumer
from faust.types import ChannelT, EventT
from faust.types.tuples import ConsumerMessage, ack_lock
from mode.utils.futures import notify
from mode.utils.times import Seconds, want_seconds

from engagement.faust.lifecycle import Stopped
from engagement.faust.monitor import QuietMonitor


async def handle_batches(
    stream: Any,
    handle: Callable[[Sequence[EventT[Any]]], Awaitable[None]],
    *,
    max_: int,
    within: float,
) -> None:
    """The agent loop: each batch of ``stream`` to ``handle``, acked once it returned; a batch
    whose handler raised ``Stopped`` is given up unacked, and the agent ends."""
    async with aclosing(stream.take_events(max_, within=within)) as batches:
        async for events in batches:
            try:
                await handle(events)
            except Stopped:
                return


class FastStream(Stream):  # type: ignore[type-arg]
    """Faust's stream whose ``take_events`` fills and acks a batch in one go (see above)."""

    def take_events(
        self, max_: int, within: Seconds
    ) -> AsyncGenerator[Sequence[EventT[Any]], None]:
        channel: Any = self.channel
        if (
            not within
            or not isinstance(channel, ChannelT)
            or not getattr(channel, "is_iterator", False)
            or self._processors
            or self.combined
            or self.join_strategy is not None
            or self._passive
        ):
            return super().take_events(max_, within)
        agen = self._take_events(max_, want_seconds(within), channel.queue)
        self._active_agens.add(agen)
        return agen

    async def _take_events(  # noqa: C901 -- mirrors Faust 0.15.3 step by step (engagement/faust/README.md)
        self, max_: int, timeout: float, queue: Any
    ) -> AsyncGenerator[Sequence[EventT[Any]], None]:
        loop = asyncio.get_running_loop()
        app = self.app
        is_flow_active = app.flow_control.is_active
        acking_topics = app.topics.acking_topics
        consumer = app.consumer
        unacked = consumer._unacked_messages  # type: ignore[attr-defined]
        add_unacked = unacked.add
        self._finalized = True
        started_by_aiter = await self.maybe_start()
        stream_enable_acks = self.enable_acks
        self.enable_acks = False  # as Faust's take_events: events are acked after the batch
        events: list[EventT[Any]] = []
        try:
            ended = False
            while not (ended or self.should_stop):
                deadline = loop.time() + timeout
                quiet = self._sensors_quiet()
                while len(events) < max_:
                    try:
                        if queue.empty():  # also False when an error was thrown into the channel
                            remaining = deadline - loop.time()
                            if remaining <= 0 or self.should_stop:
                                break
                            value = await asyncio.wait_for(queue.get(), remaining)
                        else:
                            value = queue.get_nowait()
                    except TimeoutError:
                        break
                    except StopAsyncIteration:  # the actor is told to stop reading the stream
                        ended = True
                        break
                    if not isinstance(value, EventT):
                        exc = RuntimeError("Take buffer found current_event is None")
                        self.log.exception("Error adding to take buffer: %r", exc)
                        await self.crash(exc)
                        continue
                    message = value.message
                    if not is_flow_active() or message.generation_id != app.consumer_generation_id:
                        # fetched before a rebalance: skipped and not acked, as Faust's (Cython)
                        # stream iterator does; the new assignment fetches it again
                        continue
                    if message.topic in acking_topics and not message.tracked:
                        message.tracked = True
                        add_unacked(message)
                        if not quiet:
                            self._on_message_in(message.tp, message.offset, message)
                    if not quiet:
                        self._on_stream_event_in(message.tp, message.offset, self, value)
                    events.append(value)
                if events:
                    self.events_total += len(events)
                    # acked only once the agent asks for the next batch: an agent cancelled or
                    # closing the generator while it handles this one leaves it to be replayed
                    yield events
                    batch, events = events, []
                    self._ack_events(batch, quiet)
        finally:
            # a batch given up (the agent stopped or closed the generator while handling it) is
            # not acked, and nothing waits for it any more: the partition's next owner replays it
            unacked.difference_update(event.message for event in events)
            self.enable_acks = stream_enable_acks
            self._channel_stop_iteration(self.channel)
            if started_by_aiter:
                await self.stop()
                self.service_reset()

    def _sensors_quiet(self) -> bool:
        return all(type(sensor) is QuietMonitor for sensor in self.app.sensors)

    def _ack_events(self, events: Sequence[EventT[Any]], quiet: bool) -> None:  # noqa: C901 -- mirrors Faust 0.15.3 step by step (engagement/faust/README.md)
        """``Stream.ack`` for each event (``Event.ack`` -> ``Message.ack`` -> ``Consumer.ack``,
        those inlined for Faust's own classes), under one acquisition of the ack lock."""
        consumer: Any = self.app.consumer
        inline_consumer_ack = type(consumer).ack is Consumer.ack
        acking_topics = self.app.topics.acking_topics
        committed_offsets = consumer._committed_offset
        acked_indices = consumer._acked_index
        acked_offsets = consumer._acked
        unacked = consumer._unacked_messages
        acked_any = False
        last: list[bool] = []
        # the quiet monitor keeps no per-event stats, but Faust's stall check reads when each
        # partition's stream last took an event: without it, it logs "Stream has not started
        # processing" about a busy stream
        inbound = self.app.monitor.stream_inbound_time if quiet else {}
        now = monotonic()
        with ack_lock:
            for event in events:
                message: Any = event.message
                inbound[message.tp] = now
                last_stream_to_ack = False
                if not message.acked:
                    # Message.ack
                    refcount = message.refcount = max(message.refcount - 1, 0)
                    if not refcount:
                        if not (inline_consumer_ack and type(message) is ConsumerMessage):
                            last_stream_to_ack = message.on_final_ack(consumer)
                        else:  # Consumer.ack
                            message.acked = True
                            if message.topic in acking_topics:
                                acked_any = True
                                tp = message.tp
                                offset = message.offset
                                committed = committed_offsets[tp]
                                if committed is None or offset >= committed:
                                    acked_index = acked_indices[tp]
                                    if offset not in acked_index:
                                        unacked.discard(message)
                                        acked_index.add(offset)
                                        acked_offsets[tp].append(offset)
                                        consumer._n_acked += 1
                                        last_stream_to_ack = True
                if not quiet:
                    last.append(last_stream_to_ack)
            if acked_any:
                notify(consumer._waiting_for_ack)
        if not quiet:
            for event, last_stream_to_ack in zip(events, last, strict=True):
                message = event.message
                self._on_stream_event_out(message.tp, message.offset, self, event)
                if last_stream_to_ack:
                    self._on_message_out(message.tp, message.offset, message)
