"""A worker's Faust app (services.worker.faust_app): the fast transport and the quiet monitor."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from faust.types import TP, Message

from services.scorer.settings import ScorerSettings
from services.worker.faust_app import QuietMonitor, faust_app
from services.worker.transport import FastConsumer, FastTransport

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
