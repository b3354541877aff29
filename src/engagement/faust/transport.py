"""Faust's aiokafka transport with fixes for a worker's hot path.

* A configurable fetch wait. Faust hard-codes 1500 ms; brokers that hold a fetch request for the
  whole wait even when records arrive (Tansu does) add that much latency to every hop.
* No idle second after back-pressure. A partition whose stream buffer is full leaves the set
  the fetcher asks for; when every one has, Faust sleeps one second before it looks again, and
  when some have, it waits up to a second for records of the others only (say, one at the end of
  its log) while the paused ones drain and have records waiting. Here the fetcher waits for a
  buffer to drain in the first case, and asks again every ``RESUME_POLL`` seconds in the second.
* Cheap delivery of consumed messages: inline, and without a coroutine at all while nothing would
  wait (``engagement.faust.inline_delivery`` says how). The drain loop inlines
  ``Consumer.getmany`` (an async generator step per record), and the end offset sensor
  (``track_tp_end_offset``) is fed once per partition and fetch, not per record.

Install with ``use_fast_transport(app, ms)`` right after creating the app, before any topic or
agent (``engagement.faust.app.faust_app`` does).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Coroutine, Mapping
from typing import Any, ClassVar, cast

import aiokafka
import faust
from faust.transport.consumer import CONSUMER_FETCHING, RecordMap
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import TP
from mode import Service, ServiceT

from engagement.faust.inline_delivery import Resumed, compile_put_inline
from engagement.faust.run import new_event_loop
from engagement.kafka.admin import producer_idempotence

RESUME_POLL = 0.05  # seconds: longest wait for records while some partitions are paused


def use_fast_transport(
    app: faust.App, fetch_max_wait_ms: int, *, idempotence: str = "auto"
) -> None:
    """Give the app's worker consumer ``fetch_max_wait_ms`` and the inline delivery, and its
    producer ``idempotence`` ("auto": on when the broker supports it, asked at start)."""
    transport = FastTransport(app.conf.broker_consumer, app)
    transport.fetch_max_wait_ms = fetch_max_wait_ms
    transport.idempotence = idempotence
    app.transport = transport


class FetchWaitConsumerThread(faust_aiokafka.AIOKafkaConsumerThread):
    """The aiokafka consumer thread, creating its consumer with the transport's fetch wait, on a
    uvloop loop like the worker's (mode would make an asyncio one: a tenth more CPU per record)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, thread_loop=new_event_loop(), **kwargs)
        self._close_thread_loop_on_stop = True  # ours to close, as mode closes the one it makes

    def _create_worker_consumer(self, transport: Any) -> aiokafka.AIOKafkaConsumer:
        consumer = super()._create_worker_consumer(transport)
        # read by AIOKafkaConsumer.start() when it builds its Fetcher
        consumer._fetch_max_wait_ms = transport.fetch_max_wait_ms
        return consumer


class FastConsumer(faust_aiokafka.Consumer):
    """Faust's aiokafka consumer with the configurable fetch wait and the inline delivery."""

    _drained: asyncio.Event | None = None

    def _new_consumer_thread(self) -> faust_aiokafka.AIOKafkaConsumerThread:
        return FetchWaitConsumerThread(self, loop=self.loop, beacon=self.beacon)

    def on_buffer_drop(self, tp: TP) -> None:
        super().on_buffer_drop(tp)
        if self._drained is not None:
            self._drained.set()

    async def _wait_next_records(self, timeout: float) -> tuple[RecordMap | None, set[TP] | None]:
        # Faust 0.15.3's, except that with no active partition it waits for a buffer to drain
        # (at most 1 s) where Faust sleeps the whole second, and that while some partitions are
        # paused it waits at most RESUME_POLL for the others
        if not self.flow_active:
            await self.wait(self.can_resume_flow)  # type: ignore[arg-type]
        try:
            self.not_waiting_next_records.set()
            active = None if self.app.client_only else self._get_active_partitions()
            if active is None or active:
                if self._buffered_partitions:
                    timeout = min(timeout, RESUME_POLL)
                records = await self._getmany(active_partitions=active, timeout=timeout)
                return records, active
            if self._drained is None:
                self._drained = asyncio.Event()
            self._drained.clear()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._drained.wait(), timeout=1.0)
            return {}, active
        finally:
            self.not_waiting_next_records.set()

    async def _deliver(self, delivery: Coroutine[Any, Any, Any]) -> None:
        """Run one message's delivery; only one that suspends is raced against the flow."""
        try:
            pending = delivery.send(None)
        except StopIteration:
            return  # delivered without waiting: nothing to race
        await self.wait_first(Resumed(delivery, pending), self.suspend_flow.wait())

    async def _drain_messages(self, fetcher: ServiceT) -> None:  # pragma: no cover  # noqa: C901
        # Faust 0.15.3's Consumer._drain_messages with Consumer.getmany inlined (no async
        # generator step per record), the same steps in the same order, except: the end offset
        # sensor is fed once per partition and fetch, and a message is put in its stream's buffer
        # by ``put_inline`` or, when that declines, by ``_deliver`` where Faust runs
        # ``wait_first(callback(message), self.suspend_flow.wait())``.
        callback = self.callback
        app = self.app
        consumer_should_stop = cast(Service, self)._stopped.is_set
        fetcher_should_stop = cast(Service, fetcher)._stopped.is_set
        get_read_offset = self._read_offset.__getitem__
        set_read_offset = self._read_offset.__setitem__
        set_flag = self.diag.set_flag
        unset_flag = self.diag.unset_flag
        commit_every = self._commit_every
        acks_enabled_for = app.topics.acks_enabled_for
        deliver = self._deliver
        put_inline = compile_put_inline(app)
        wait_next_records = self._wait_next_records
        iterate = self.scheduler.iterate
        to_message = self._to_message
        highwater = self.highwater
        track_tp_end_offset = app.monitor.track_tp_end_offset
        yield_every = 100
        num_since_yield = 0
        sleep = asyncio.sleep
        try:
            while not (consumer_should_stop() or fetcher_should_stop()):
                set_flag(CONSUMER_FETCHING)
                # getmany may be called in a loop without ever releasing the event loop
                await self.sleep(0)
                if not self.should_stop:
                    # Consumer.getmany from here
                    records, active_partitions = await wait_next_records(1.0)
                    generation_id = app.consumer_generation_id
                    if records is not None and not self.should_stop:
                        if self.flow_active:
                            tracked: set[TP] = set()
                            for tp, record in iterate(records):
                                if not self.flow_active:
                                    break
                                new_generation_id = app.consumer_generation_id
                                if new_generation_id != generation_id:
                                    self.log.dev(
                                        "Generation id changed from %r to %r. Cancelling getmany.",
                                        generation_id,
                                        new_generation_id,
                                    )
                                    break
                                if not (
                                    active_partitions is None
                                    or tp in active_partitions
                                    or tp in self._buffered_partitions
                                ):
                                    continue
                                if tp not in tracked:
                                    tracked.add(tp)
                                    track_tp_end_offset(tp, highwater(tp))
                                message = to_message(tp, record)
                                # Consumer._drain_messages from here
                                num_since_yield += 1
                                if num_since_yield > yield_every:
                                    await sleep(0)
                                    num_since_yield = 0
                                offset = message.offset
                                r_offset = get_read_offset(tp)
                                if r_offset is None or offset >= r_offset:
                                    gap = offset - (r_offset or 0)
                                    if gap > 1 and r_offset and acks_enabled_for(message.topic):
                                        await self._add_gap(tp, r_offset + 1, offset)
                                    if commit_every is not None and self._n_acked >= commit_every:
                                        self._n_acked = 0
                                        await self.commit()
                                    if not put_inline(message):
                                        await deliver(
                                            cast(Coroutine[Any, Any, Any], callback(message))
                                        )
                                    set_read_offset(tp, offset)
                        else:
                            self.log.dev(
                                "getmany called while flow not active. "
                                "Seek back to committed offsets."
                            )
                            try:
                                await self.perform_seek()
                            except Exception as ex:
                                self.log.warning(
                                    f"exception performing seek when flow not active {ex}"
                                )
                    unset_flag(CONSUMER_FETCHING)
        except self.consumer_stopped_errors:
            if self.transport.app.should_stop:
                self.log.info("Broker stopped consumer, shutting down...")
                return
            raise
        except asyncio.CancelledError:
            if self.transport.app.should_stop:
                self.log.info("Consumer shutting down for user cancel.")
                return
            raise
        except Exception as exc:
            self.log.exception("Drain messages raised: %r", exc)
            raise
        finally:
            unset_flag(CONSUMER_FETCHING)


class IdempotenceProducer(faust_aiokafka.Producer):
    """Faust's producer, idempotent when its transport says so or ("auto") the broker takes it."""

    enable_idempotence: bool = False

    async def on_start(self) -> None:
        transport = cast(FastTransport, self.transport)
        bootstrap = ",".join(f"{u.host}:{u.port or 9092}" for u in transport.url)
        self.enable_idempotence = await producer_idempotence(transport.idempotence, bootstrap)
        await super().on_start()

    def _settings_extra(self) -> Mapping[str, Any]:
        extra = super()._settings_extra()
        return {**extra, "enable_idempotence": True} if self.enable_idempotence else extra


class FastTransport(faust_aiokafka.Transport):
    """Faust's aiokafka transport whose worker consumer is ``FastConsumer``."""

    Consumer: ClassVar[Any] = FastConsumer
    Producer: ClassVar[Any] = IdempotenceProducer
    fetch_max_wait_ms: int = 1500
    idempotence: str = "auto"
