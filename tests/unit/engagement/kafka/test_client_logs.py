"""The Kafka client's repeated warnings are logged once per window, with a count of the rest."""

from __future__ import annotations

import logging

from engagement.kafka.client_logs import RepeatFilter


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def record(name: str, msg: str, *args: object, level: int = logging.ERROR) -> logging.LogRecord:
    return logging.LogRecord(name, level, __file__, 1, msg, args, None)


def test_a_client_error_repeated_is_logged_once_per_window_then_with_its_count() -> None:
    clock = Clock()
    repeat = RepeatFilter(window=30.0, clock=clock)
    passed = []
    for node in range(100):
        clock.now = node * 0.1  # 100 a second for a second
        line = record("aiokafka.conn", "Unable connect to node with id %s: %s", node, "refused")
        if repeat.filter(line):
            passed.append(line.getMessage())
    clock.now = 31.0
    last = record("aiokafka.conn", "Unable connect to node with id %s: %s", 7, "refused")
    assert repeat.filter(last)
    assert passed == ["Unable connect to node with id 0: refused"]
    assert last.getMessage() == (
        "Unable connect to node with id 7: refused (99 more like this in the last 30 s not logged)"
    )


def test_other_kinds_loggers_and_levels_pass() -> None:
    repeat = RepeatFilter(clock=Clock())
    assert repeat.filter(record("aiokafka.cluster", "Unable to update metadata from %s", 1))
    assert repeat.filter(record("aiokafka.conn", "Unable connect to node with id %s", 1))
    assert repeat.filter(record("aiokafka", "Unable connect to node with id %s", 2)), "own kind"
    for _ in range(3):
        assert repeat.filter(record("engagement.scorer", "redis call failed %s", 1))
        assert repeat.filter(record("aiokafka.conn", "connected to %s", 1, level=logging.INFO))
        assert repeat.filter(record("aiokafkax", "not the client %s", 1))
