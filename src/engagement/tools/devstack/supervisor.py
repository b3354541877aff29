"""A running dev stack, watched (``engagement dev`` without a part named): started, waited for until
ingest is ready, fed demo traffic, shown in the view with each alert the receiver gets, and every
child stopped at the end; a child that dies ends it, with what its log says."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
from collections.abc import Callable
from typing import Protocol

import httpx

from engagement.tools.devstack.children import Child
from engagement.tools.devstack.demo import DemoTraffic
from engagement.tools.devstack.monitor import Snapshot, breakdown, collect
from engagement.tools.devstack.receiver import ReceivedAlert
from engagement.tools.devstack.settings import DevSettings
from engagement.tools.devstack.stack import Stack, StackOptions, start_stack, stop_quietly
from engagement.tools.localstack import LocalServiceError

READY_TIMEOUT = 180.0


class View(Protocol):
    def progress(self, message: str) -> None: ...
    def ready(self, url: str) -> None: ...
    def error(self, message: str) -> None: ...
    def alert(self, alert: ReceivedAlert, view: dict[str, object]) -> None: ...
    def update(self, snapshot: Snapshot) -> None: ...
    def close(self) -> None: ...


async def serve(args: argparse.Namespace, settings: DevSettings, view: View) -> int:
    """Start the stack, show it until stopped (or a child dies); stop every child; the exit code."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):  # SIGHUP: the terminal closed
        loop.add_signal_handler(sig, stop.set)
    alerts: asyncio.Queue[ReceivedAlert] = asyncio.Queue()
    options = StackOptions(
        http_port=args.http_port,
        kafka_port=args.kafka_port,
        receiver_port=args.receiver_port,
        broker=args.broker,
    )
    try:
        stack = await asyncio.to_thread(
            start_stack,
            options,
            settings=settings,
            on_alert=lambda a: _enqueue(loop, alerts, a),
            progress=view.progress,
        )
    except (LocalServiceError, OSError, ValueError) as exc:
        view.error(f"could not start the stack: {exc}")
        return 1
    code = 1
    try:
        code = await _supervise(stack, args, settings, view, stop, alerts)
    finally:
        # the children are stopped whatever printing does: after Ctrl-C on `make run | tee log`
        # the pipe is gone, and a failed print must not leave them running
        progress = _unfailing(view.progress)
        with contextlib.suppress(OSError):
            view.close()
        progress("stopping: every child process")
        await asyncio.to_thread(stop_quietly, stack, progress, keep_logs=code != 0)
        progress("stopped")
    return code


def _unfailing(progress: Callable[[str], None]) -> Callable[[str], None]:
    """``progress``, ignoring a closed or broken output."""

    def write(message: str) -> None:
        with contextlib.suppress(OSError, ValueError):
            progress(message)

    return write


async def _supervise(
    stack: Stack,
    args: argparse.Namespace,
    settings: DevSettings,
    view: View,
    stop: asyncio.Event,
    alerts: asyncio.Queue[ReceivedAlert],
) -> int:
    """Wait for readiness, run demo traffic and the view until stopped; 1 if a child died."""
    loop = asyncio.get_running_loop()
    deadline = None if args.duration is None else loop.time() + args.duration
    async with httpx.AsyncClient() as client:
        if not await _wait_ready(client, stack, view, stop, deadline):
            return 0 if stop.is_set() or _past(deadline) else 1
        view.ready(stack.ingest_url)
        traffic = (
            None
            if args.no_demo
            else DemoTraffic(
                base_url=stack.ingest_url,
                write_key=settings.demo_write_key.get_secret_value(),
                rate=args.rate,
            )
        )
        if traffic is not None:
            view.progress(
                f"demo: {args.rate:g} events/s, candidate ids cand-{traffic.run_id}-N / anon-{traffic.run_id}-N"
            )
        read_key = settings.demo_read_key.get_secret_value()
        tasks = [asyncio.create_task(_show_alerts(client, stack, alerts, view, read_key))]
        if traffic is not None:
            tasks.append(asyncio.create_task(traffic.run(stop)))
        try:
            return await _watch(client, stack, view, stop, deadline, traffic, read_key)
        finally:
            stop.set()
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)


def _enqueue(
    loop: asyncio.AbstractEventLoop, alerts: asyncio.Queue[ReceivedAlert], alert: ReceivedAlert
) -> None:
    loop.call_soon_threadsafe(alerts.put_nowait, alert)


def _past(deadline: float | None) -> bool:
    return deadline is not None and asyncio.get_running_loop().time() >= deadline


def _report_dead(stack: Stack, view: View) -> bool:
    dead = stack.dead_child()
    if dead is None:
        return False
    view.error(
        f"{dead.name} (pid {dead.pid}) {how_it_ended(dead.exit_code())}; {_last_lines(dead)}"
    )
    return True


def how_it_ended(code: int | None) -> str:
    """What an exit code says: killed by a signal (OOM killer: SIGKILL), or exited with it."""
    if code is not None and code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        hint = " (by hand, or the kernel's out-of-memory killer)" if -code == signal.SIGKILL else ""
        return f"was killed by {name}{hint}"
    return f"exited with code {code}"


def _last_lines(dead: Child) -> str:
    """Its log's last lines: the errors and tracebacks first, where it logged any."""
    tail = dead.log_tail(200).splitlines()
    errors = [line for line in tail if "[ERROR]" in line or "Traceback" in line or "Error:" in line]
    shown = "\n".join((errors or tail)[-20:])
    return f"{'its last errors' if errors else 'its last log lines'}:\n{shown}"


async def _pause(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)


async def _wait_ready(
    client: httpx.AsyncClient, stack: Stack, view: View, stop: asyncio.Event, deadline: float | None
) -> bool:
    loop = asyncio.get_running_loop()
    give_up = loop.time() + READY_TIMEOUT
    view.progress(f"waiting: {stack.ingest_url}/readyz")
    while not stop.is_set() and not _past(deadline):
        if _report_dead(stack, view):
            return False
        with contextlib.suppress(httpx.HTTPError):
            if (await client.get(stack.ingest_url + "/readyz", timeout=2.0)).status_code == 200:
                return True
        if loop.time() > give_up:
            view.error(
                f"ingest not ready after {READY_TIMEOUT:.0f}s; its last log lines:\n{stack.children['ingest'].log_tail()}"
            )
            return False
        await _pause(stop, 0.25)
    return False


async def _watch(
    client: httpx.AsyncClient,
    stack: Stack,
    view: View,
    stop: asyncio.Event,
    deadline: float | None,
    traffic: DemoTraffic | None,
    read_key: str,
) -> int:
    previous: Snapshot | None = None
    while not stop.is_set() and not _past(deadline):
        if _report_dead(stack, view):
            return 1
        stats = traffic.stats if traffic else None
        previous = await collect(client, stack, stats, previous, read_key=read_key)
        view.update(previous)
        await _pause(stop, 1.0)
    return 0


async def _show_alerts(
    client: httpx.AsyncClient,
    stack: Stack,
    alerts: asyncio.Queue[ReceivedAlert],
    view: View,
    read_key: str,
) -> None:
    while True:
        alert = await alerts.get()
        view.alert(
            alert, await breakdown(client, stack, read_key=read_key, candidate=alert.candidate)
        )
