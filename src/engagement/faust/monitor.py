"""The workers' Faust monitor: Faust's, without its per-message bookkeeping."""

from __future__ import annotations

from typing import Any

from faust.sensors import Monitor
from faust.types import TP, EventT, Message, ProducerT, RecordMetadata, StreamT
from faust.types.tuples import PendingMessage


class QuietMonitor(Monitor):
    """Faust's monitor without its per-message bookkeeping (counters, timings, read offsets and
    deques kept for Faust's own stats pages, which the workers disable): several microseconds
    per record on the hot path. The workers export their own metrics (lag included); committed
    offsets, commits and rebalances are still tracked."""

    def on_message_in(self, tp: TP, offset: int, message: Message) -> None:
        return None

    def on_stream_event_in(
        self, tp: TP, offset: int, stream: StreamT[Any], event: EventT[Any]
    ) -> dict[str, Any] | None:
        return None

    def on_stream_event_out(
        self,
        tp: TP,
        offset: int,
        stream: StreamT[Any],
        event: EventT[Any],
        state: dict[str, Any] | None = None,
    ) -> None:
        return None

    def on_message_out(self, tp: TP, offset: int, message: Message) -> None:
        return None

    def on_send_initiated(
        self,
        producer: ProducerT,
        topic: str,
        message: PendingMessage,
        keysize: int,
        valsize: int,
    ) -> Any:
        return None

    def on_send_completed(self, producer: ProducerT, state: Any, metadata: RecordMetadata) -> None:
        return None
