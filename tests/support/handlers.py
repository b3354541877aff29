"""The scorer's batch handler in process (no Faust, no Kafka consumer), as tests and benchmarks
drive it: records in, sends to the callables given."""

from __future__ import annotations

from typing import Any

from engagement.store.redis_store import ScoreStore
from services.scorer.handler import BatchHandler, SendAll
from services.scorer.metrics import ScorerMetrics


def batch_handler(
    store: ScoreStore, send_all: SendAll, send_acked: SendAll | None = None, **options: Any
) -> BatchHandler:
    """A handler on ``store`` sending through ``send_all`` (and ``send_acked``, else the same)
    to topics named dlq, changes, latest and interactions; ``options``: other fields."""
    return BatchHandler(
        store=store,
        send_all=send_all,
        send_acked=send_acked or send_all,
        metrics=ScorerMetrics(),
        dlq_topic="dlq",
        changes_topic="changes",
        latest_topic="latest",
        interactions_topic="interactions",
        **options,
    )
