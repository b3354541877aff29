"""The Kafka client's log lines while a broker is away: once per streak, not a hundred a second.

While a broker is down, aiokafka's retry loops log each attempt (``Unable connect to node``,
``Unable to update metadata``): about 100 ERROR lines a second per process, which buries the line
that says what happened. ``RepeatFilter`` lets the first line of a kind through, drops that kind
for ``window`` seconds, then lets one through that says how many it dropped. A kind is the logger
and the message's template, not its text (node ids and addresses vary). Only the Kafka client's
warnings and errors are filtered; every other line passes.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable

CLIENT_LOGGERS = ("aiokafka", "kafka")


class RepeatFilter(logging.Filter):
    """Drops repeats of a Kafka client warning or error within ``window`` seconds of its first."""

    def __init__(self, *, window: float = 30.0, clock: Callable[[], float] = time.monotonic):
        super().__init__()
        self.window = window
        self._clock = clock
        self._seen: dict[tuple[str, str], list[float]] = {}  # kind -> [first at, dropped since]

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.WARNING or not _client(record.name):
            return True
        kind, now = (record.name, str(record.msg)), self._clock()
        seen = self._seen.get(kind)
        if seen is not None and now - seen[0] < self.window:
            seen[1] += 1
            return False
        dropped = 0 if seen is None else int(seen[1])
        self._seen[kind] = [now, 0]
        if dropped:
            record.msg = (
                f"{record.getMessage()} ({dropped} more like this in the last "
                f"{self.window:.0f} s not logged)"
            )
            record.args = ()
        return True


def _client(name: str) -> bool:
    return any(name == n or name.startswith(f"{n}.") for n in CLIENT_LOGGERS)


def install(handlers: Iterable[logging.Handler] | None = None) -> RepeatFilter:
    """Put one ``RepeatFilter`` on each handler (default: the root logger's), where it sees the
    records of every logger below the root."""
    repeat = RepeatFilter()
    for handler in logging.getLogger().handlers if handlers is None else handlers:
        handler.addFilter(repeat)
    return repeat
