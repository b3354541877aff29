"""Terminal output of `engagement dev`: a rich live view, or plain lines with --headless."""

from __future__ import annotations

import sys
import time
from collections import deque
from datetime import datetime
from typing import Any

from rich.console import Console, Group
from rich.live import Live
from rich.panel import Panel
from rich.status import Status
from rich.table import Table

from engagement.tools.devstack.monitor import Snapshot, describe_breakdown
from engagement.tools.devstack.receiver import ReceivedAlert

TIER_ORDER = ("cold", "warm", "hot")


def status_line(snapshot: Snapshot, alerts: int) -> str:
    """Return the one-line summary printed in headless mode."""
    rates = " ".join(f"{k}={v:.1f}" for k, v in sorted(snapshot.rates.items())) or "-"
    tiers = " ".join(f"{k}={v}" for k, v in _ordered(snapshot.tiers)) or "-"
    lag = "-" if snapshot.lag is None else f"{snapshot.lag:.0f}"
    services = " ".join(f"{k}={v}" for k, v in snapshot.services.items())
    return (
        f"status: events/s {rates} | accepted {snapshot.accepted_total} rejected {snapshot.rejected} "
        f"failed requests {snapshot.failed_requests} | lag {lag} | tiers {tiers} | alerts {alerts} | {services}"
    )


def _ordered(tiers: dict[str, int]) -> list[tuple[str, int]]:
    return sorted(
        tiers.items(),
        key=lambda kv: (TIER_ORDER.index(kv[0]) if kv[0] in TIER_ORDER else 99, kv[0]),
    )


class HeadlessView:
    """Plain lines on stdout: progress, the ready line, each verified alert, periodic status."""

    def __init__(self, *, status_interval: float) -> None:
        self.status_interval = status_interval
        self.alerts = 0
        self._last_status = 0.0

    def progress(self, message: str) -> None:
        print(message, flush=True)

    def ready(self, url: str) -> None:
        print(f"ready: {url}", flush=True)

    def error(self, message: str) -> None:
        print(f"error: {message}", file=sys.stderr, flush=True)

    def alert(self, alert: ReceivedAlert, view: dict[str, Any]) -> None:
        self.alerts += 1
        print(f"{alert.line()} | {describe_breakdown(view)}", flush=True)

    def update(self, snapshot: Snapshot) -> None:
        if snapshot.at - self._last_status >= self.status_interval:
            self._last_status = snapshot.at
            print(status_line(snapshot, self.alerts), flush=True)

    def close(self) -> None:
        pass


class LiveView:
    """A rich dashboard: services, events/s by channel, lag, tiers, latest hot alerts."""

    def __init__(self) -> None:
        self.console = Console()
        self.alerts: deque[tuple[str, ReceivedAlert, dict[str, Any]]] = deque(maxlen=8)
        self.count = 0
        self.snapshot: Snapshot | None = None
        self._status: Status | None = self.console.status("starting ...")
        self._status.start()
        self._live: Live | None = None

    def progress(self, message: str) -> None:
        if self._status is not None:
            self._status.update(message)
        else:
            self.console.print(message)

    def ready(self, url: str) -> None:
        if self._status is not None:
            self._status.stop()
            self._status = None
        print(f"ready: {url}", flush=True)
        self.console.print("[dim]Ctrl-C stops everything. API docs: " + url + "/docs[/dim]")
        self._live = Live(self._render(), console=self.console, refresh_per_second=2)
        self._live.start()

    def error(self, message: str) -> None:
        self.console.print(f"[bold red]error:[/bold red] {message}")

    def alert(self, alert: ReceivedAlert, view: dict[str, Any]) -> None:
        self.count += 1
        if alert.type != "candidate.tier_changed":
            self.alerts.appendleft((datetime.now().strftime("%H:%M:%S"), alert, view))
        self._refresh()

    def update(self, snapshot: Snapshot) -> None:
        self.snapshot = snapshot
        self._refresh()

    def close(self) -> None:
        if self._live is not None:
            self._live.stop()
            self._live = None
        if self._status is not None:
            self._status.stop()
            self._status = None

    def _refresh(self) -> None:
        if self._live is not None:
            self._live.update(self._render())

    def _render(self) -> Group:
        s = self.snapshot or Snapshot(at=time.monotonic())
        top = Table.grid(expand=True, padding=(0, 2))
        top.add_row(_services(s), _channels(s), _tiers(s))
        return Group(top, _alerts(self.alerts, self.count))


def _services(s: Snapshot) -> Panel:
    table = Table.grid(padding=(0, 1))
    for name, state in s.services.items():
        table.add_row(
            name, f"[green]{state}[/green]" if state == "ready" else f"[yellow]{state}[/yellow]"
        )
    table.add_row("consumer lag", "-" if s.lag is None else f"{s.lag:.0f}")
    table.add_row("accepted", str(s.accepted_total))
    table.add_row("rejected", str(s.rejected))
    if s.failed_requests:
        table.add_row("failed requests", f"[red]{s.failed_requests}[/red] {s.last_error[:40]}")
    return Panel(table, title="pipeline")


def _channels(s: Snapshot) -> Panel:
    table = Table("channel", "events/s", "total", box=None)
    for channel in sorted(s.accepted):
        table.add_row(channel, f"{s.rates.get(channel, 0.0):.1f}", f"{s.accepted[channel]:.0f}")
    return Panel(table, title="events by channel")


def _tiers(s: Snapshot) -> Panel:
    table = Table("tier", "candidates", box=None)
    for tier, count in _ordered(s.tiers):
        table.add_row(tier, str(count))
    return Panel(table, title="candidates per tier")


def _alerts(alerts: deque[tuple[str, ReceivedAlert, dict[str, Any]]], count: int) -> Panel:
    table = Table(
        "time", "alert", "candidate", "score", "pillars now", "channels now", box=None, expand=True
    )
    for at, alert, view in alerts:
        colour = "red" if alert.type == "candidate.hot" else "cyan"
        table.add_row(
            at,
            f"[{colour}]{alert.type.removeprefix('candidate.')}[/{colour}]",
            alert.candidate,
            f"{alert.score} ({alert.previous_tier}->{alert.tier})",
            _sums(view.get("pillars", {}), short=True),
            _sums(view.get("channels", {})),
        )
    return Panel(table, title=f"latest hot / cooled candidates (verified webhooks: {count})")


def _sums(values: dict[str, float], *, short: bool = False) -> str:
    return " ".join(f"{k[:1].upper() if short else k} {v:.0f}" for k, v in values.items()) or "-"
