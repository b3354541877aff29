"""Follow the score topics from an ATS/CRM with confluent-kafka (librdkafka, the client most
non-Python stacks wrap): ``python docs/examples/ats_consumer.py BOOTSTRAP [TOPIC] [GROUP]``.

Each record is keyed ``tenant:candidate`` (raw UTF-8 bytes, so every record of a candidate is in
one partition, in order) and carries CloudEvents headers (``ce_type``, ``ce_id``, ``ce_sequence``,
...); its value is a JSON ``ScoreChange`` (docs/topics.md), or nothing: a tombstone on the latest
topic (the candidate was erased or folded into another). Delivery is at least once: keep, per
candidate, the highest ``sequence`` stored, and ignore a record at or below it.
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any

from confluent_kafka import Consumer, KafkaException


def follow(
    bootstrap: str, topic: str, group: str, *, most: int, timeout: float = 30.0
) -> list[dict[str, Any]]:
    """Read up to ``most`` records of ``topic`` as group ``group`` (from the start the first
    time), committing each after it is stored; what an ATS would store of each."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": group,
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,  # commit after storing: at least once
        }
    )
    consumer.subscribe([topic])
    stored: list[dict[str, Any]] = []
    latest: dict[str, int] = {}  # candidate key -> highest sequence stored
    deadline = time.monotonic() + timeout
    try:
        while len(stored) < most and time.monotonic() < deadline:
            message = consumer.poll(1.0)
            if message is None:
                continue
            if message.error():
                raise KafkaException(message.error())
            key = (message.key() or b"").decode()
            headers = {name: value.decode() for name, value in message.headers() or []}
            raw = message.value()
            value = None if raw is None else json.loads(raw)
            sequence = int(headers.get("ce_sequence", "0"))
            if value is None or sequence > latest.get(key, 0):  # a replay changes nothing
                latest[key] = sequence
                stored.append({"key": key, "headers": headers, "value": value})
            consumer.commit(message=message, asynchronous=False)
    finally:
        consumer.close()
    return stored


if __name__ == "__main__":
    args = sys.argv[1:]
    if not args:
        sys.exit(__doc__)
    topic = args[1] if len(args) > 1 else "engagement.scores.changed.v1"
    group = args[2] if len(args) > 2 else "ats-example"
    for row in follow(args[0], topic, group, most=sys.maxsize, timeout=float("inf")):
        print(json.dumps(row))
