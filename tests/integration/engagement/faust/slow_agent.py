"""A worker whose one agent is slower than its consumer, for the back-pressure tests.

``python -m tests.integration.engagement.faust.slow_agent`` runs it like ``engagement scorer`` runs the
scorer (``run_worker``, a Faust app from ``faust_app`` with a small stream buffer), with the
consumer counting the deliveries that had to wait and the waits for a buffer to drain. GET
/received answers every record the agent got, in order, and those counts.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
from pathlib import Path
from typing import Any, ClassVar, Literal, cast

import faust
from faust import web

from engagement.faust.app import faust_app, raw_topic
from engagement.faust.inline_delivery import Resumed
from engagement.faust.run import run_worker
from engagement.faust.settings import WorkerSettings, worker_env
from engagement.faust.transport import FastConsumer, FastTransport
from engagement.faust.web import assignment

STREAM_BUFFER_MAXSIZE = 32  # a few fetched records fill it
BATCH_DELAY = 0.01  # seconds the agent spends on each batch: far more than their delivery


class SlowAgentSettings(WorkerSettings):
    """Every worker's settings, read as SLOWAGENT_*."""

    service: ClassVar[str] = "slowagent"
    model_config = worker_env(service)

    web_port: int = 6099
    data_dir: Path = Path(tempfile.gettempdir()) / "engagement-slow-agent"


class DrainSignal(asyncio.Event):
    """The consumer's drain event, counting the waits for it and the ones a drain ended."""

    def __init__(self) -> None:
        super().__init__()
        self.waits = self.drained = 0

    async def wait(self) -> Literal[True]:
        self.waits += 1
        await super().wait()  # cancelled when the wait times out
        self.drained += 1
        return True


class CountingConsumer(FastConsumer):
    """The fast consumer, counting the deliveries raced against the flow (those that waited)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.drain_signal = self._drained = DrainSignal()
        self.waited_deliveries = 0

    async def wait_first(self, *coros: Any, timeout: Any = None) -> Any:
        if coros and isinstance(coros[0], Resumed):
            self.waited_deliveries += 1
        return await super().wait_first(*coros, timeout=timeout)


def build_app(settings: SlowAgentSettings) -> faust.App:
    """Return the worker app: one slow agent on the interactions topic and GET /received."""
    app = faust_app(
        settings, stream_buffer_maxsize=STREAM_BUFFER_MAXSIZE, topic_disable_leader=True
    )
    if not isinstance(app.transport, FastTransport):
        raise TypeError(f"faust_app installed {type(app.transport)}, not the fast transport")
    app.transport.Consumer = CountingConsumer  # type: ignore[misc]
    received: list[tuple[int, int, str]] = []

    @app.agent(raw_topic(app, settings.topics.interactions), concurrency=1)
    async def slow(stream: faust.StreamT[bytes]) -> None:
        async for events in stream.take_events(  # type: ignore[attr-defined]
            settings.batch_size, within=settings.batch_within
        ):
            received.extend(
                (e.message.partition, e.message.offset, e.value.decode()) for e in events
            )
            await asyncio.sleep(BATCH_DELAY)

    @app.page("/received")
    async def received_view(self: web.View, request: web.Request) -> web.Response:
        consumer = cast(CountingConsumer, app.consumer)
        return self.json(
            {
                "assigned": len(assignment(app)),
                "records": received,
                "waitedDeliveries": consumer.waited_deliveries,
                "drainWaits": consumer.drain_signal.waits,
                "drainedWaits": consumer.drain_signal.drained,
            }
        )

    return app


if __name__ == "__main__":
    sys.exit(
        run_worker(
            sys.argv[1:], settings_type=SlowAgentSettings, build_app=build_app, description=__doc__
        )
    )
