"""Kafka topic names and record keys (docs/design.md §3). The names are a contract: never rename."""

from __future__ import annotations

from dataclasses import dataclass

from engagement.model.identity import candidate_of_ids

INTERACTIONS = "engagement.interactions.v1"
INTERACTIONS_DLQ = "engagement.interactions.dlq.v1"
SCORES_CHANGED = "engagement.scores.changed.v1"
SCORES_LATEST = "engagement.scores.latest.v1"
CANDIDATE_ALERTS = "engagement.candidate-alerts.v1"
WEBHOOKS_DLQ = "engagement.model.webhooks.dlq.v1"
SCORES_DLQ = "engagement.scores.dlq.v1"
RULES = "engagement.rules.v1"  # tenants' score templates (engagement.kafka.rules_topic)

COMPACTED = frozenset({SCORES_LATEST, RULES})


@dataclass(frozen=True)
class Topics:
    """The topic names one deployment uses: the contract names behind an optional prefix.

    The prefix exists for shared clusters and test isolation; production leaves it empty.
    """

    prefix: str = ""

    def name(self, base: str) -> str:
        """Return the full topic name for a contract name."""
        return f"{self.prefix}{base}"

    @property
    def interactions(self) -> str:
        return self.name(INTERACTIONS)

    @property
    def interactions_dlq(self) -> str:
        return self.name(INTERACTIONS_DLQ)

    @property
    def scores_changed(self) -> str:
        return self.name(SCORES_CHANGED)

    @property
    def scores_latest(self) -> str:
        return self.name(SCORES_LATEST)

    @property
    def candidate_alerts(self) -> str:
        return self.name(CANDIDATE_ALERTS)

    @property
    def webhooks_dlq(self) -> str:
        return self.name(WEBHOOKS_DLQ)

    @property
    def scores_dlq(self) -> str:
        return self.name(SCORES_DLQ)

    @property
    def rules(self) -> str:
        return self.name(RULES)


def identity_key(tenant_id: str, user_id: str | None, anonymous_id: str | None) -> str:
    """Return the interactions record key ``tenant:identity`` (``candidate_of_ids``)."""
    return f"{tenant_id}:{candidate_of_ids(user_id, anonymous_id)}"


def candidate_key(tenant_id: str, candidate_id: str) -> str:
    """Return the score/alert record key ``tenant:candidate``."""
    return f"{tenant_id}:{candidate_id}"


def tenant_of_key(key: bytes | None) -> str | None:
    """The tenant of a record keyed ``tenant:...`` (None for another key)."""
    if not key or b":" not in key:
        return None
    return key.split(b":", 1)[0].decode("utf-8", errors="replace")
