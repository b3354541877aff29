"""Broker failover (issue 20): three Apache Kafka nodes, the leader of the interactions
partitions SIGKILLed under load and started again later.

The chaos suite's stack (ingest, scorers a and b, the notifier, a webhook receiver, a Redis of
its own) runs on a three-node KRaft cluster of its own, every topic at replication factor 3 with
``min.insync.replicas=2``. While events arrive through ``POST /v1/batch`` (the chaos load: a
request that is refused is sent again until acknowledged), a node leading interactions
partitions is SIGKILLed (the scorers' group coordinator when it leads some, else the node leading
the most); once the cluster has moved every leadership away from it
(the controller fences a node whose heartbeats stop after ``broker.session.timeout.ms``, 9 s by
default), it is started again on its data, rejoins every in-sync replica set and gets its
preferred leaderships back (a second leader change, a clean one).

What must hold: every event answered 200 is scored exactly once (the stored scores are the
closed form over the acknowledged events, and no record was written that no 200 answered);
ingest refused requests (503) only between the kill and the moment every interactions
partition had a live leader again, never once the quorum was back (not while the node was away,
nor while it came back); the scorers and the notifier were never restarted.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import pytest
from aiokafka.admin import AIOKafkaAdminClient

from engagement.tools import kafka_cluster
from engagement.tools.kafka_cluster import KafkaCluster
from tests.chaos import checks, observe
from tests.chaos.load import LoadResult, make_events, plan, run_load
from tests.chaos.report import say
from tests.chaos.stack import RULES, WRITE_KEY, Stack, running_stack
from tests.integration.scorer.expected import Sent

EVENTS, CANDIDATES, SECONDS = 3000, 300, 40.0
PARTITIONS = 4
KILL_AT, RESTART_AT = 0.25, 0.6  # shares of the load's duration
IDLE_TIMEOUT = 180.0

pytestmark = pytest.mark.timeout(600)


@dataclass
class Failover:
    """What happened to the cluster, as epoch seconds."""

    node: int = 0
    led: int = 0  # interactions partitions the killed node led
    coordinators: list[int] = field(default_factory=list)  # of the scorer and notifier groups
    killed: float = 0.0
    interactions_moved: float = 0.0  # every interactions partition led by a live node
    leaders_moved: float = 0.0  # every partition of every topic led by a live node
    restarted: float = 0.0
    serving: float = 0.0  # the restarted node serves clients
    in_sync: float = 0.0  # every replica of every partition in sync again
    leaders_back: float = 0.0  # every partition led by its preferred replica again


async def describe(bootstrap: str) -> list[tuple[str, int, int, list[int], list[int]]]:
    """(topic, partition, leader, replicas, in-sync replicas) of every partition of the cluster."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=5000)
    await admin.start()
    try:
        described = await admin.describe_topics()
    finally:
        await admin.close()
    return [
        (t["topic"], p["partition"], p["leader"], list(p["replicas"]), list(p["isr"]))
        for t in described
        for p in t["partitions"]
    ]


async def coordinators(bootstrap: str, groups: list[str]) -> list[int]:
    """The node coordinating each of ``groups``."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=5000)
    await admin.start()
    try:
        return [await admin.find_coordinator(group) for group in groups]
    finally:
        await admin.close()


def partitions(bootstrap: str) -> list[tuple[str, int, int, list[int], list[int]]]:
    """``describe``, asked again until a node answers."""
    while True:
        try:
            return asyncio.run(describe(bootstrap))
        except Exception:  # the node asked was the one just killed: ask again
            time.sleep(0.2)


def wait_until(bootstrap: str, holds: object) -> float:
    """Poll the cluster's partitions until ``holds(partitions)``; return when it first held."""
    deadline = time.monotonic() + IDLE_TIMEOUT
    while time.monotonic() < deadline:
        if holds(partitions(bootstrap)):  # type: ignore[operator]
            return time.time()
        time.sleep(0.2)
    raise AssertionError(f"the cluster did not get there: {partitions(bootstrap)}")


def fail_over(cluster: KafkaCluster, stack: Stack, *, start: float) -> Failover:
    """Kill a leader of interactions partitions at KILL_AT, start it again at RESTART_AT
    (or once every leadership moved), and follow the cluster until it is whole again."""
    time.sleep(max(0.0, start + KILL_AT * SECONDS - time.time()))
    led = [p[2] for p in partitions(cluster.bootstrap) if p[0] == stack.topics.interactions]
    groups = [f"{stack.topics.prefix}engagement-{name}" for name in ("scorer", "notifier")]
    done = Failover(coordinators=asyncio.run(coordinators(cluster.bootstrap, groups)))
    # the scorers' group coordinator when it leads interactions partitions too (both move)
    done.node = max(set(led), key=lambda n: (n == done.coordinators[0], led.count(n)))
    done.led = led.count(done.node)
    cluster.node(done.node).kill()
    done.killed = time.time()
    live = ",".join(n.address for n in cluster.nodes if n.alive)  # none of its requests waits
    topic = stack.topics.interactions
    done.interactions_moved = wait_until(
        live, lambda ps: all(p[2] not in (done.node, -1) for p in ps if p[0] == topic)
    )
    done.leaders_moved = wait_until(live, lambda ps: all(p[2] not in (done.node, -1) for p in ps))
    time.sleep(max(0.0, start + RESTART_AT * SECONDS - time.time()))
    done.restarted = time.time()
    cluster.node(done.node).start()
    done.serving = time.time()
    done.in_sync = wait_until(cluster.bootstrap, lambda ps: all(len(p[4]) == 3 for p in ps))
    done.leaders_back = wait_until(cluster.bootstrap, lambda ps: all(p[2] == p[3][0] for p in ps))
    return done


def wait_idle(stack: Stack) -> float:
    deadline = time.monotonic() + IDLE_TIMEOUT
    while time.monotonic() < deadline:
        quiet = observe.quiet_since(stack, 2.5)
        if quiet is not None:
            return quiet
        time.sleep(0.5)
    raise AssertionError(f"not idle after {IDLE_TIMEOUT:.0f}s: lag {observe.offsets(stack)[0]}")


@dataclass
class Outcome:
    load: LoadResult
    failover: Failover
    idle: float
    starts: dict[str, int]
    alive: dict[str, bool]
    interactions: list[tuple[int, int, bytes, object]]
    profiles: dict[str, observe.Profile | None]


@pytest.fixture(scope="module")
def cluster() -> Iterator[KafkaCluster]:
    started = kafka_cluster.start_kafka_cluster(3)
    try:
        yield started
    finally:
        started.stop()


@pytest.fixture(scope="module")
def outcome(cluster: KafkaCluster) -> Outcome:
    with running_stack(
        cluster.bootstrap,
        partitions=PARTITIONS,
        sweep_interval=1.0,
        env={"KAFKA_REPLICATION_FACTOR": "3"},
    ) as stack:
        try:
            return _run(cluster, stack)
        except BaseException:
            for service in stack.services():
                print(f"--- {service.name} (started {service.starts}x)\n{service.log_tail()}")
            for node in cluster.nodes:
                print(f"--- kafka node {node.node_id}\n{node.log_tail()}")
            raise


def _run(cluster: KafkaCluster, stack: Stack) -> Outcome:
    events = make_events(EVENTS, CANDIDATES, seed=20, now=time.time())
    start = time.time() + 0.5
    with ThreadPoolExecutor(1) as pool:  # the load on a thread, the failover on this one
        sending = pool.submit(
            run_load, stack.base, WRITE_KEY, plan(events, per_request=50, seed=20),
            start=start, seconds=SECONDS,
        )  # fmt: skip
        failover = fail_over(cluster, stack, start=start)
        load = sending.result()
    idle = wait_idle(stack)
    services = [stack.ingest, stack.notifier, stack.scorer("a"), stack.scorer("b")]
    candidates = sorted({e.candidate for e in load.acknowledged.values()})
    return Outcome(
        load,
        failover,
        idle,
        starts={s.name: s.starts for s in services},
        alive={s.name: s.alive for s in services},
        interactions=observe.read_topic_values(stack.kafka, stack.topics.interactions),
        profiles=observe.profiles(stack, candidates),
    )


def test_every_acknowledged_event_is_scored_exactly_once_through_a_leader_failover(
    outcome: Outcome,
) -> None:
    import tomllib

    rules = tomllib.loads(RULES)
    by_candidate: dict[str, list[Sent]] = {}
    for sent in outcome.load.acknowledged.values():
        by_candidate.setdefault(sent.candidate, []).append(sent)
    problems = checks.check_scores(by_candidate, outcome.profiles, rules)
    _, strangers = checks.applied_order(outcome.interactions, outcome.load.acknowledged)
    _print_figures(outcome)
    assert not outcome.load.failures, outcome.load.failures[:3]
    assert len(outcome.load.acknowledged) == EVENTS
    assert not strangers, f"records no 200 answered: {strangers[:5]}"
    assert not problems, "\n".join(problems[:5])


def test_ingest_refuses_only_while_an_interactions_partition_has_no_live_leader(
    outcome: Outcome,
) -> None:
    failover, refused = outcome.failover, outcome.load.refused
    # every refusal is a 503 (ingest itself stayed up) answered after the kill to a request
    # sent before every interactions partition had a live leader again
    assert {status for _, _, status in refused} <= {503}, refused
    late = [r for r in refused if r[1] < failover.killed or r[0] > failover.interactions_moved]
    assert not late, (
        f"refused outside the failover window (kill at {failover.killed:.1f}, interactions "
        f"leaders moved at {failover.interactions_moved:.1f}): {late[:5]}"
    )


def test_scorers_and_notifier_ride_through_without_a_restart(outcome: Outcome) -> None:
    assert outcome.starts == dict.fromkeys(outcome.starts, 1)
    assert all(outcome.alive.values()), outcome.alive


def _print_figures(outcome: Outcome) -> None:
    f, load = outcome.failover, outcome.load
    scored = sum(p.sequence for p in outcome.profiles.values() if p is not None)
    refused = sorted(load.refused)
    say(f"broker failover: {EVENTS:,} events / {CANDIDATES:,} candidates over {SECONDS:g} s")
    say(
        f"  node {f.node} (leader of {f.led}/{PARTITIONS} interactions partitions; the scorer "
        f"and notifier groups' coordinators: nodes {f.coordinators}) SIGKILLed; "
        f"interactions led by live nodes {f.interactions_moved - f.killed:.1f} s later, every "
        f"partition {f.leaders_moved - f.killed:.1f} s"
    )
    say(
        f"  restarted {f.restarted - f.killed:.1f} s after the kill: serving in "
        f"{f.serving - f.restarted:.1f} s, every replica in sync {f.in_sync - f.restarted:.1f} s, "
        f"preferred leaders back {f.leaders_back - f.restarted:.1f} s after its start"
    )
    say(
        f"  events sent {EVENTS:,}, acknowledged {len(load.acknowledged):,}, scored {scored:,}; "
        f"requests {load.requests:,}, refused {len(refused)} (503)"
        + (
            f": sent {refused[0][0] - f.killed:.1f}-{refused[-1][0] - f.killed:.1f} s after the "
            f"kill, answered {min(r[1] for r in refused) - f.killed:.1f}-"
            f"{max(r[1] for r in refused) - f.killed:.1f} s after it"
            if refused
            else ""
        )
    )
    say(
        f"  load took {load.ended - load.started:.1f} s; the pipeline idle "
        f"{outcome.idle - load.ended:.1f} s after its last request"
    )
