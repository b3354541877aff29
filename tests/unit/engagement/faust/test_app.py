"""A worker's Faust app (engagement.faust.app): the fast transport, the quiet monitor, raw
topics and the fast stream's batch ack (engagement.faust.streams)."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path
from typing import Any

from faust import Stream
from faust.types import TP, Message
from faust.types.tuples import ConsumerMessage

from engagement.faust.app import faust_app, raw_topic
from engagement.faust.monitor import QuietMonitor
from engagement.faust.streams import FastStream
from engagement.faust.transport import FastConsumer, FastTransport
from services.scorer.settings import ScorerSettings

TOPIC_PARTITION = TP("engagement.interactions.v1", 2)
NOTHING: Any = None  # what the quiet hooks never look at (streams, events, producers)


def message(offset: int) -> Message:
    return Message(TOPIC_PARTITION.topic, 2, offset, 0.0, 0, [], b"key", b"value", None)


def test_worker_apps_consume_with_the_fast_transport_and_the_configured_fetch_wait(
    tmp_path: Path,
) -> None:
    settings = ScorerSettings(scorer_data_dir=tmp_path, scorer_fetch_max_wait_ms=7)
    app = faust_app(settings)
    assert isinstance(app.transport, FastTransport)
    assert app.transport.Consumer is FastConsumer
    assert app.transport.fetch_max_wait_ms == 7


def test_worker_apps_use_the_quiet_monitor(tmp_path: Path) -> None:
    app = faust_app(ScorerSettings(scorer_data_dir=tmp_path))
    assert isinstance(app.monitor, QuietMonitor)


def test_the_quiet_monitor_keeps_no_per_message_stats() -> None:
    # given a quiet monitor
    monitor = QuietMonitor()
    # when a message goes through every per-message hook
    received = message(41)
    monitor.on_message_in(TOPIC_PARTITION, 41, received)
    state = monitor.on_stream_event_in(TOPIC_PARTITION, 41, NOTHING, NOTHING)
    monitor.on_stream_event_out(TOPIC_PARTITION, 41, NOTHING, NOTHING, state)
    monitor.on_message_out(TOPIC_PARTITION, 41, received)
    sent = monitor.on_send_initiated(NOTHING, TOPIC_PARTITION.topic, NOTHING, 3, 5)
    monitor.on_send_completed(NOTHING, sent, NOTHING)
    # then nothing was counted, timed or remembered
    assert (monitor.messages_received_total, monitor.messages_active) == (0, 0)
    assert (monitor.events_total, monitor.events_active, monitor.messages_sent) == (0, 0, 0)
    assert not monitor.tp_read_offsets
    assert not monitor.send_latency
    assert received.time_in is None


def test_the_quiet_monitor_still_tracks_committed_offsets() -> None:
    monitor = QuietMonitor()
    monitor.on_tp_commit({TOPIC_PARTITION: 42})
    assert monitor.tp_committed_offsets[TOPIC_PARTITION] == 42


def test_worker_apps_take_batches_with_the_fast_stream(tmp_path: Path) -> None:
    app = faust_app(ScorerSettings(scorer_data_dir=tmp_path))
    assert app.conf.Stream is FastStream


async def test_a_raw_topic_makes_the_event_from_the_bytes_on_the_wire(tmp_path: Path) -> None:
    # given a raw topic
    app = faust_app(ScorerSettings(scorer_data_dir=tmp_path))
    topic = raw_topic(app, TOPIC_PARTITION.topic)
    received = message(41)
    # when it decodes a message, the coroutine and the inline delivery's factory alike
    decoded = await topic.decode(received, propagate=True)
    made = topic.decode.make_event(received.key, received.value, received.headers, received)  # type: ignore[attr-defined]
    # then each is Faust's event of the key and value bytes, pointing at the message
    for event in (decoded, made):
        assert isinstance(event, app.conf.Event)
        assert (event.key, event.value, event.message, event.headers) == (
            b"key",
            b"value",
            received,
            {},
        )


def test_a_batch_is_acked_as_faust_acks_each_event(tmp_path: Path) -> None:
    # given two apps' streams, each with the same three consumed messages taken (tracked)
    def taken(app: Any) -> tuple[Any, list[Any]]:
        app.topics._acking_topics.add(TOPIC_PARTITION.topic)
        consumer = app.consumer
        consumer._committed_offset[TOPIC_PARTITION] = 40
        stream = app.stream(raw_topic(app, TOPIC_PARTITION.topic))
        events = []
        for offset in (39, 41, 42):  # 39: already committed
            received = consumer_message(offset)
            received.refcount = 1
            received.tracked = True
            consumer._unacked_messages.add(received)
            events.append(app.create_event(received.key, received.value, [], received))
        return stream, events

    faust_way, ours = (
        taken(faust_app(ScorerSettings(scorer_data_dir=tmp_path / name))) for name in "ab"
    )
    # when one acks them with Faust's Stream.ack, one event at a time, the other as a batch
    for event in faust_way[1]:
        _ack(faust_way[0], event)
    ours[0]._ack_events(ours[1], quiet=True)

    # then the consumers' bookkeeping is the same: offsets 41 and 42 are ready to commit
    def bookkeeping(stream: Any, events: list[Any]) -> Any:
        consumer = stream.app.consumer
        return (
            [e.message.acked for e in events],
            [e.message.refcount for e in events],
            dict(consumer._acked),
            dict(consumer._acked_index),
            consumer._n_acked,
            len(consumer._unacked_messages),
        )

    assert bookkeeping(*ours) == bookkeeping(*faust_way)
    assert bookkeeping(*ours)[2] == {TOPIC_PARTITION: [41, 42]}
    # and the partition's stream counts as processing (Faust's stall check reads it)
    assert TOPIC_PARTITION in ours[0].app.monitor.stream_inbound_time


def _ack(stream: Any, event: Any) -> None:
    """Run Faust's ``Stream.ack`` (a coroutine that never waits) to completion."""
    try:
        Stream.ack(stream, event).send(None)
    except StopIteration:
        return
    raise AssertionError("Stream.ack waited")


def consumer_message(offset: int) -> ConsumerMessage:
    return ConsumerMessage(
        TOPIC_PARTITION.topic, 2, offset, 0.0, 0, [], b"key", b"value", None, tp=TOPIC_PARTITION
    )


def _stream_with(app: Any, *offsets_generations: tuple[int, int]) -> Any:
    """A stream of the app with consumed messages (offset, consumer generation) in its buffer."""
    app.topics._acking_topics.add(TOPIC_PARTITION.topic)
    app.consumer._committed_offset[TOPIC_PARTITION] = 10
    app.consumer_generation_id = 2
    app.flow_control.resume()
    stream = app.stream(raw_topic(app, TOPIC_PARTITION.topic))
    for offset, generation in offsets_generations:
        received = consumer_message(offset)
        received.generation_id = generation
        received.refcount = 1
        stream.channel.queue.put_nowait(
            app.create_event(received.key, received.value, [], received)
        )
    return stream


async def test_an_event_fetched_before_a_rebalance_is_skipped_and_never_acked(
    tmp_path: Path,
) -> None:
    # given a buffered event of the previous consumer generation, then one of the current
    app = faust_app(ScorerSettings(scorer_data_dir=tmp_path))
    stream = _stream_with(app, (10, 1), (11, 2))
    # when the agent takes batches and asks for the next one
    batches = stream.take_events(10, within=0.05)
    first = await batches.__anext__()
    with contextlib.suppress(StopAsyncIteration, TimeoutError):
        await asyncio.wait_for(batches.__anext__(), 0.2)
    await batches.aclose()
    # then only the current event was handed over and acked (offset 10 is fetched again by the
    # new assignment; an ack of the stale copy would make it committable before it is handled)
    assert [e.message.offset for e in first] == [11]
    assert app.consumer._acked[TOPIC_PARTITION] == [11]


async def test_a_batch_whose_agent_stops_while_handling_it_is_not_acked(tmp_path: Path) -> None:
    # given a batch handed to the agent
    app = faust_app(ScorerSettings(scorer_data_dir=tmp_path))
    stream = _stream_with(app, (10, 2), (11, 2))
    batches = stream.take_events(10, within=0.05)
    batch = await batches.__anext__()
    assert [e.message.offset for e in batch] == [10, 11]
    # when the agent is stopped (the generator closed) before it asks for the next batch
    await batches.aclose()
    # then nothing of the batch is acked: its offsets are not committed, it is replayed
    assert not app.consumer._acked[TOPIC_PARTITION]
    assert app.consumer._new_offset(TOPIC_PARTITION) is None
    assert all(not e.message.acked for e in batch)
    # and a stopping consumer does not wait for it (wait_empty): it is given up
    assert not app.consumer._unacked_messages
