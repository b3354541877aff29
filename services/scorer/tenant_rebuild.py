"""A tenant's rebuild: rescore one tenant's retained history under a version of its template
(by default its newest, possibly ``pending``: another half-life) while every scorer goes on, and
move the tenant over to it at one cut of the interactions topic. Run by a scorer for
``POST /v1/rules/rebuild`` (``services.scorer.rebuild_runner``) and by ``engagement rebuild
--tenant T`` (``engagement.tools.tenant_rebuild``).

The existing rebuild (``engagement.tools.rebuild``, docs/operations.md §3.1), for one tenant: the
history is replayed into new keys, beside the live ones, by a consumer of its own that publishes
nothing (the scorer's ``BatchHandler`` with ``publish=False``); the new keys are the tenant's next
*generation* (``P g<n>{T:C}``, ``P g<n>{T}``: ``engagement.store.templated_store.GenerationLayout``,
the same hash tags, so the same slots); sequences are carried over (``engagement.store.sequence_carry``).
What the whole-store rebuild gets by stopping the scorers, this one gets from the topic's order:

1. **One cut.** Once the replay has caught up, a marker ``{type: rebuild_marker, tenantId,
   generation}`` is written to every interactions partition. The replay scores T's events before
   the marker of their partition and stops there on each; a live scorer that reaches a marker
   waits until it is scoring T on the new generation (its follower read the activation) before
   it takes the next record of that batch. So every event of T is in the new generation exactly
   once: before the cut by the replay, after it by the live scorers (an event before the cut a
   live scorer scores after its switch is a replay, answered by the messageId dedupe).
2. **Nothing published from an incomplete generation.** The activation (the version ``active``,
   ``rebuilt=True``, the new ``generation``, on the rules topic) is stored only once the replay
   has read every partition up to its marker; every process (scorer, notifier, read API) moves T
   over when its follower reads it, each at one instant, and other tenants never move.
3. **Sequences only go up for consumers.** Before the activation, each candidate's sequence in
   the new generation is raised to its sequence in the old one plus the number of records still
   ahead of the live scorers before the markers (the live group's committed offsets bound it):
   every record from the new generation is past every record the old one published or still
   publishes (a scorer not switched yet, for a few hundred milliseconds), so consumers that drop
   a record whose sequence is not past the last one take the first record after the switch and
   drop a late one from the old generation. The notifier's state, the erasure fences, the tenants
   set and the webhook queue are global keys: nothing to copy.
4. **Other tenants untouched.** Their keys, template and generation never change and their events
   are scored by the same code; a live scorer's only wait is at a marker, about the replay's tail
   plus a replay poll (``services.scorer.tenant_replay.POLL_MS``).
5. **A rebuild that dies gives way.** The activation is decided by ``SET NX`` of the handover key
   (``P{T}:handover:<generation>``) to ``activated``, and published only then; a live scorer that
   waited ``HANDOVER_SECONDS`` at a marker sets it to ``aborted`` and goes on with the old
   generation, and the rebuild then stops without activating; a live scorer that finds it
   ``aborted`` already (another scorer gave up, or a takeover or a failed attempt fenced the
   attempt off) goes on at once (``at_marker``). Each attempt rescores into a generation no
   earlier attempt used (past the tenant's, past the one a request recorded, past every handover
   key): an attempt never finds its generation's handover key already set, and never shares its
   keys with an attempt that may still be running.
6. **An activation decided is published.** The handover key is the decision and the record on the
   rules topic follows it, so the key ``activated`` with no activation on the topic (the runner
   died between the two, or the publish failed) is finished by whoever finds it: the runner's next
   poll, a takeover once a dead runner's lock lapsed, ``engagement rebuild --tenant`` run again
   (``services.scorer.rebuild_runner``) each publish the activation again before recording the
   request ``activated``: the same record (the request keeps the activation's time, recorded
   before the key is set), which the compacted topic and every follower take as one. The
   request's recorded state never contradicts the key: ``activated`` only once the key is
   ``activated`` and the activation on the topic, ``aborted`` only once the key is ``aborted``;
   a failure after the key is ``activated`` leaves the request ``running`` for the next poll. A
   live scorer at a marker so waits ``HANDOVER_SECONDS`` at most, unless the rebuild activated:
   then until the activation is published (the next poll, a takeover after the lock's life
   ``LOCK_MS``, or the end of a Kafka outage).

The old generation's keys stay (a later rebuild of the tenant can remove them).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from typing import Any

from aiokafka import AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from engagement.kafka.rules_topic import (
    HANDOVER_SECONDS,
    RebuildMarker,
    TemplateFollower,
    marker_value,
    version_key,
    version_value,
)
from engagement.kafka.topics import Topics
from engagement.model.templates import Templates, TemplateVersion
from engagement.store.connection import RedisClient
from engagement.store.redis_keys import KeyLayout, glob_literal
from engagement.store.redis_store import ScoreStore
from engagement.store.sequence_carry import CarryReport, carry_sequences
from engagement.store.templated_store import GenerationLayout, generation_store, handover_key
from services.scorer.tenant_replay import Replay

log = logging.getLogger("engagement.rebuild")
MARKER_POLL_SECONDS = 0.05  # a live scorer at a marker looks for the switch (or an abort) so often


@dataclass
class Rebuild:
    """One tenant's rebuild: what it needs, built by the command or the admin API."""

    redis: RedisClient
    base: ScoreStore  # the default template's store on the live prefix (its client, fences)
    templates: Templates  # followed from the rules topic (caught up)
    bootstrap_servers: str
    topics: Topics
    live_group: str  # the live scorers' consumer group (its committed offsets bound the lag)
    store_options: dict[str, Any] = field(default_factory=dict)  # the live store's (jobs kept)

    def target(self, tenant_id: str, version: str | None = None) -> TemplateVersion:
        """The version the rebuild makes active: ``version``, else the tenant's newest."""
        versions = self.templates.versions(tenant_id)
        if not versions:
            raise ValueError(f"tenant {tenant_id!r} has no template of its own")
        named = [v for v in versions if v.version == version]
        if version is not None and not named:
            raise ValueError(f"tenant {tenant_id!r} has no version {version!r} (yet)")
        return named[-1] if named else versions[-1]

    async def fresh_generation(self, tenant_id: str, *, after: int = 0) -> int:
        """A generation past the tenant's, past ``after`` and without a handover key (invariant 5:
        one no earlier attempt activated or gave up)."""
        generation = max(self.templates.generation(tenant_id), after) + 1
        while await self.redis.exists(handover_key(self.base.keys, tenant_id, generation)):
            generation += 1
        return generation

    async def rescore(
        self, tenant_id: str, *, version: str | None = None, generation: int | None = None
    ) -> CarryReport:
        """Replay, cut, carry (the module's steps 1 to 3) into ``generation`` (default: a fresh
        one), activating nothing: the carry's report (``activate`` follows)."""
        target = self.target(tenant_id, version)
        old = self.templates.generation(tenant_id)
        generation = generation or await self.fresh_generation(tenant_id)
        into = generation_store(self.base, target.rules, generation, **self.store_options)
        await drop_generation(self.redis, self.base.keys.prefix, tenant_id, generation)
        replay = Replay(self.bootstrap_servers, self.topics, into, tenant_id)
        await replay.start(await self._partitions())
        try:
            await replay.until(await replay.ends())
            cut = await self._markers(tenant_id, generation)
            await replay.until(cut, cut=True)
        finally:
            await replay.stop()
        margin = sum((await self.behind(cut)).values())
        report = await carry_sequences(
            into,
            GenerationLayout(self.base.keys.prefix, old),
            tenants=[tenant_id],
            margin=margin,
        )
        if self.templates.generation(tenant_id) != old:
            raise RuntimeError("the tenant was rebuilt meanwhile: run it again")
        return report

    async def _partitions(self) -> set[int]:
        producer = AIOKafkaProducer(bootstrap_servers=self.bootstrap_servers)
        await producer.start()
        try:
            return set(await producer.partitions_for(self.topics.interactions))
        finally:
            await producer.stop()

    async def _markers(self, tenant_id: str, generation: int) -> dict[int, int]:
        producer = AIOKafkaProducer(bootstrap_servers=self.bootstrap_servers, acks="all")
        await producer.start()
        try:
            topic = self.topics.interactions
            key, value = f"{tenant_id}:rebuild".encode(), marker_value(tenant_id, generation)
            cut = {}
            for partition in sorted(await producer.partitions_for(topic)):
                sent = await producer.send_and_wait(topic, value, key=key, partition=partition)
                cut[partition] = sent.offset
            return cut
        finally:
            await producer.stop()

    async def behind(self, cut: dict[int, int]) -> dict[int, int]:
        """Records before each marker the live group has not committed past (an upper bound of
        what the live scorers can still score on the old generation)."""
        topic = self.topics.interactions
        admin = AIOKafkaAdminClient(bootstrap_servers=self.bootstrap_servers)
        await admin.start()
        try:
            # the partitions named: Tansu answers OffsetFetch v3 for all of a group's partitions
            # (topics null) without its topics array, which aiokafka cannot decode
            partitions = [TopicPartition(topic, p) for p in sorted(cut)]
            offsets = await admin.list_consumer_group_offsets(
                self.live_group, partitions=partitions
            )
        finally:
            await admin.close()
        committed = {tp.partition: meta.offset for tp, meta in offsets.items() if tp.topic == topic}
        return {p: max(0, m - max(0, committed.get(p, 0))) for p, m in cut.items()}

    async def activate(self, tenant_id: str, *, version: str, generation: int, at: str) -> None:
        """Decide the activation (``SET NX`` of the handover key to ``activated``; RuntimeError
        when the live scorers gave the attempt up), then publish it (invariants 5 and 6)."""
        key = handover_key(self.base.keys, tenant_id, generation)
        if not await self.redis.set(key, "activated", nx=True) and (
            await self.redis.get(key)
        ) not in (b"activated", "activated"):
            raise RuntimeError("a live scorer gave up waiting at a marker: run it again")
        await self.publish(tenant_id, version=version, generation=generation, at=at)

    async def publish(self, tenant_id: str, *, version: str, generation: int, at: str) -> None:
        """Store the activation on the rules topic: the version ``active``, ``rebuilt``, in
        ``generation``, activated ``at``. Idempotent (the same record each time)."""
        active = replace(
            self.target(tenant_id, version),
            state="active",
            activated_at=at,
            rebuilt=True,
            generation=generation,
        )
        producer = AIOKafkaProducer(bootstrap_servers=self.bootstrap_servers, acks="all")
        try:  # retried while Kafka is down: a producer that did not start is closed too
            await producer.start()
            await producer.send_and_wait(
                self.topics.rules, version_value(active), key=version_key(active)
            )
        finally:
            await producer.stop()


async def drop_generation(redis: RedisClient, prefix: str, tenant_id: str, generation: int) -> int:
    """Delete the tenant's keys of one generation (a rebuild's leftovers, or the old one's); the
    global keys among them (the notifier's state, the handover keys, the rebuild requests) stay."""
    layout = GenerationLayout(prefix, generation)
    patterns = [
        glob_literal(layout.candidate_base(tenant_id, "")[:-1]) + "*",
        glob_literal(layout.tier_set(tenant_id, "")[: -len(":tier:")]) + ":*",
    ]
    dropped = 0
    for pattern in patterns:
        async for key in redis.scan_iter(match=pattern, count=1000):
            name = key.decode() if isinstance(key, bytes) else str(key)
            if name.endswith(":notified") or ":handover:" in name or ":rebuild" in name:
                continue
            dropped += int(await redis.unlink(name))
    return dropped


async def follow_templates(
    default: Templates, bootstrap_servers: str, topics: Topics
) -> TemplateFollower:
    """The registry read up to the rules topic's end (the rebuild's view of the tenant)."""
    follower = TemplateFollower(default, bootstrap_servers=bootstrap_servers, topics=topics)
    await follower.catch_up()
    return follower


def at_marker(
    templates: Templates, redis: RedisClient, keys: KeyLayout, *, patience: float = HANDOVER_SECONDS
) -> Callable[[RebuildMarker], Awaitable[None]]:
    """A live scorer's wait at a tenant's rebuild marker: until it scores the tenant on the
    rebuild's generation (its follower read the activation), or the rebuild is given up: its
    handover key ``aborted`` already, or set so by this scorer after ``patience`` seconds
    (invariants 1 and 5; ``SET NX``: never over an activation). A key ``activated`` is waited
    out: its activation is on the rules topic, or a runner publishes it (invariant 6)."""

    async def wait(marker: RebuildMarker) -> None:
        key = handover_key(keys, marker.tenant_id, marker.generation)
        deadline, told = time.monotonic() + patience, False
        while templates.generation(marker.tenant_id) < marker.generation:
            give_up = time.monotonic() > deadline
            if (give_up and await redis.set(key, "aborted", nx=True)) or await _aborted(redis, key):
                log.warning("rebuild of tenant %s given up at its marker", marker.tenant_id)
                return
            if give_up and not told:  # activated: once, not every poll
                told = True
                log.warning(
                    "rebuild of tenant %s activated, its activation not read yet: waiting at "
                    "its marker for a runner to publish it",
                    marker.tenant_id,
                    extra={"event": "scorer.rebuild_activation_awaited"},
                )
            await asyncio.sleep(MARKER_POLL_SECONDS)

    return wait


async def _aborted(redis: RedisClient, key: str) -> bool:
    return await redis.get(key) in (b"aborted", "aborted")
