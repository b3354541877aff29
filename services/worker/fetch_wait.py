"""Faust's Kafka transport with a configurable fetch wait (Faust hard-codes 1500 ms).

A fetch request waits up to ``fetch_max_wait_ms`` for data; brokers that hold the request for the
whole wait even when records arrive (Tansu does) add that much latency to every hop. Install with
``use_fetch_max_wait(app, ms)`` right after creating the app, before any topic or agent
(``services.worker.faust_app.faust_app`` does).
"""

from __future__ import annotations

from typing import Any, ClassVar

import aiokafka
import faust
from faust.transport.drivers import aiokafka as faust_aiokafka


def use_fetch_max_wait(app: faust.App, fetch_max_wait_ms: int) -> None:
    """Make the app's worker consumer wait at most ``fetch_max_wait_ms`` per fetch request."""
    transport = FetchWaitTransport(app.conf.broker_consumer, app)
    transport.fetch_max_wait_ms = fetch_max_wait_ms
    app.transport = transport


class FetchWaitConsumerThread(faust_aiokafka.AIOKafkaConsumerThread):
    """The aiokafka consumer thread, creating its consumer with the transport's fetch wait."""

    def _create_worker_consumer(self, transport: Any) -> aiokafka.AIOKafkaConsumer:
        consumer = super()._create_worker_consumer(transport)
        # read by AIOKafkaConsumer.start() when it builds its Fetcher
        consumer._fetch_max_wait_ms = transport.fetch_max_wait_ms
        return consumer


class FetchWaitConsumer(faust_aiokafka.Consumer):
    """Faust's aiokafka consumer using ``FetchWaitConsumerThread``."""

    def _new_consumer_thread(self) -> faust_aiokafka.AIOKafkaConsumerThread:
        return FetchWaitConsumerThread(self, loop=self.loop, beacon=self.beacon)


class FetchWaitTransport(faust_aiokafka.Transport):
    """Faust's aiokafka transport whose worker consumer uses ``fetch_max_wait_ms``."""

    Consumer: ClassVar[Any] = FetchWaitConsumer
    fetch_max_wait_ms: int = 1500
