"""Prometheus metrics of the scorer; one registry per app so tests and benches can build several;
what a batch's outcomes add to them (``count_outcomes``)."""

from __future__ import annotations

import collections
from bisect import bisect_left
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from engagement.faust.web import LATENCY_BUCKETS
from engagement.model.records import Interaction
from engagement.model.score_views import ApplyOutcome
from engagement.model.scoring import epoch

OUTCOMES = ("scored", "duplicate", "unscored", "capped", "dlq")
_BATCH_BUCKETS = (1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000)


class CandidatesCollector(Collector):
    """``engagement_candidates{tenant,tier}`` from the snapshot taken just before the scrape."""

    def __init__(self) -> None:
        self.counts: Mapping[str, Mapping[str, int]] = {}

    def collect(self) -> Iterable[GaugeMetricFamily]:
        family = GaugeMetricFamily(
            "engagement_candidates",
            "Candidates per tenant and tier right now (from the rank sets, at scrape time).",
            labels=["tenant", "tier"],
        )
        for tenant, tiers in sorted(self.counts.items()):
            for tier, count in tiers.items():
                family.add_metric([tenant, tier], count)
        yield family


def observe_all(histogram: Histogram, amounts: Iterable[float]) -> None:
    """``histogram.observe(a)`` for each of ``amounts``, one increment per bucket and one for the
    sum (a batch's end-to-end latencies: a lock round and a bucket scan per event otherwise)."""
    bounds = histogram._upper_bounds  # as observe: the first bucket whose bound is >= the amount
    counts = [0] * len(bounds)
    total = 0.0
    for amount in amounts:
        counts[bisect_left(bounds, amount)] += 1
        total += amount
    histogram._sum.inc(total)
    for bucket, count in zip(histogram._buckets, counts, strict=True):
        if count:
            bucket.inc(count)


@dataclass
class ScorerMetrics:
    """The scorer's instruments, registered in their own registry."""

    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        r = self.registry
        self.events = Counter(
            "engagement_scorer_events",
            "Records consumed, by tenant and outcome (scored, duplicate, unscored, capped, "
            "conflict, dlq; erased: an erasure request; erasing: withheld, its id being erased; "
            "kept: an expiry request whose anonymous candidate came back).",
            ["tenant", "outcome"],
            registry=r,
        )
        self.batch_events = Histogram(
            "engagement_scorer_batch_events",
            "Events per processed batch.",
            buckets=_BATCH_BUCKETS,
            registry=r,
        )
        self.end_to_end = Histogram(
            "engagement_scorer_end_to_end_seconds",
            "Seconds from receivedAt (ingest) to the score written in Redis.",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.redis_seconds = Histogram(
            "engagement_scorer_redis_seconds",
            "Seconds per pipelined Redis batch (successful attempts).",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.redis_errors = Counter(
            "engagement_scorer_redis_errors", "Failed Redis batch attempts (retried).", registry=r
        )
        self.quarantined = Counter(
            "engagement_scorer_quarantined",
            "Records set aside to the DLQ after failing for a reason that is no outage (a bug, or "
            "data no code foresaw), by tenant and failureType.",
            ["tenant", "failure_type"],
            registry=r,
        )
        self.consumer_lag = Gauge(
            "engagement_scorer_consumer_lag",
            "Records behind the partition's high watermark (highwater - next offset to process).",
            ["partition"],
            registry=r,
        )
        self.candidates = CandidatesCollector()
        r.register(self.candidates)


def count_outcomes(
    metrics: ScorerMetrics,
    interactions: Sequence[Interaction],
    outcomes: Sequence[ApplyOutcome],
    *,
    now: float,
    latency: bool,
) -> None:
    """Count each event's outcome per tenant (a merge counts as scored); with ``latency``, observe
    the end-to-end seconds of the scored ones at ``now``."""
    counts: collections.Counter[tuple[str, str]] = collections.Counter()
    latencies: list[float] = []
    for interaction, outcome in zip(interactions, outcomes, strict=True):
        name: str = outcome.outcome
        if name == "scored" or name == "merged":
            name = "scored"
            latencies.append(max(0.0, now - epoch(interaction.receivedAt)))
        counts[interaction.tenantId, name] += 1
    if latency:
        observe_all(metrics.end_to_end, latencies)
    for (tenant, name), count in counts.items():
        metrics.events.labels(tenant, name).inc(count)
