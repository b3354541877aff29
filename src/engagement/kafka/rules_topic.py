"""The tenants' score templates on Kafka: ``engagement.rules.v1``, the workers' source of truth.

One partition, compacted, keyed ``tenant:version``: compaction keeps the last record of every
version of every tenant, so the topic *is* the version history, and its order (one partition)
is the order in which versions became active. Every ingest, scorer and notifier reads it from the
start at startup (``TemplateFollower.catch_up``) and then follows it (``follow``), folding each
record into its ``engagement.model.templates.Templates``. A record is valid by the same code as
``engagement rules check`` (``parse_template``); one that is not (written by something else) is
logged and skipped.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError

from engagement.kafka.admin import ensure_topics
from engagement.kafka.topics import RULES, Topics
from engagement.model.rules import RulesError, parse_template
from engagement.model.templates import Templates, TemplateVersion

log = logging.getLogger("engagement.rules")
POLL_MS = 250  # a new version reaches a following process within about this (plus its batch)


def version_key(version: TemplateVersion) -> bytes:
    """The record key: ``tenant:version`` (compaction keeps each version's last record)."""
    return f"{version.tenant_id}:{version.version}".encode()


def version_value(version: TemplateVersion) -> bytes:
    """The record value (JSON): tenant, version, state, the template text as sent, its media."""
    return orjson.dumps(
        {
            "tenantId": version.tenant_id,
            "version": version.version,
            "state": version.state,
            "media": version.media,
            "text": version.text,
            "createdAt": version.created_at,
            "activatedAt": version.activated_at,
            "rebuilt": version.rebuilt,
            "generation": version.generation,
        }
    )


def parse_version(value: bytes) -> TemplateVersion:
    """A record value back into a version; ValueError (RulesError) when it is not one."""
    data: dict[str, Any] = orjson.loads(value)
    media: Literal["toml", "json"] = "json" if data.get("media") == "json" else "toml"
    rules = parse_template(str(data["text"]), source="engagement.rules.v1", media=media)
    if rules.version != data.get("version"):
        raise ValueError(f"record of version {data.get('version')!r} holds {rules.version!r}")
    return TemplateVersion(
        tenant_id=str(data["tenantId"]),
        rules=rules,
        text=str(data["text"]),
        media=media,
        state="active" if data.get("state") == "active" else "pending",
        created_at=str(data.get("createdAt", "")),
        activated_at=data.get("activatedAt"),
        rebuilt=bool(data.get("rebuilt", False)),
        generation=int(data.get("generation", 0)),
    )


MARKER = "rebuild_marker"
HANDOVER_SECONDS = 60.0  # a live scorer waits this long at a marker, then gives the rebuild up


@dataclass(frozen=True)
class RebuildMarker:
    """The cut of a tenant's rebuild in one interactions partition
    (``services.scorer.tenant_rebuild``): the live scorers score the tenant's records after it
    on ``generation`` only."""

    tenant_id: str
    generation: int


def marker_value(tenant_id: str, generation: int) -> bytes:
    """A marker record's value (keyed ``tenant:rebuild``, one per interactions partition)."""
    return orjson.dumps({"type": MARKER, "tenantId": tenant_id, "generation": generation})


def parse_marker(data: Mapping[str, object]) -> RebuildMarker | None:
    """The marker a record value (parsed JSON) is; None when it is none."""
    tenant, generation = data.get("tenantId"), data.get("generation")
    if data.get("type") != MARKER or not isinstance(tenant, str) or not isinstance(generation, int):
        return None
    return RebuildMarker(tenant, generation)


async def ensure_rules_topic(bootstrap_servers: str, topics: Topics, replication: int) -> None:
    """Create the rules topic (one partition, compacted) when it is missing."""
    await ensure_topics(
        bootstrap_servers, topics, partitions=1, replication_factor=replication, bases=(RULES,)
    )


class TemplateFollower:
    """Reads the rules topic into ``templates``: at startup up to its end, then as it grows.

    ``on_change(tenant)`` is called after a tenant's rules changed (its ``rules_for``)."""

    def __init__(
        self,
        templates: Templates,
        *,
        bootstrap_servers: str,
        topics: Topics,
        replication_factor: int = 1,
        on_change: Callable[[str], None] | None = None,
    ) -> None:
        self.templates = templates
        self.bootstrap_servers = bootstrap_servers
        self.topics = topics
        self.replication_factor = replication_factor
        self.on_change = on_change
        self.position = 0  # offset of the next record to read
        self.caught_up = asyncio.Event()  # set once the topic was read up to its end at startup
        self._consumer: AIOKafkaConsumer | None = None

    async def catch_up(self) -> None:
        """Create the topic if missing, and read it up to its end as of now."""
        await ensure_rules_topic(self.bootstrap_servers, self.topics, self.replication_factor)
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self.bootstrap_servers,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            client_id="engagement-rules",
        )
        try:
            await consumer.start()
        except BaseException:
            await consumer.stop()
            raise
        self._consumer = consumer
        partition = TopicPartition(self.topics.rules, 0)
        consumer.assign([partition])
        await consumer.seek_to_beginning(partition)
        end = (await consumer.end_offsets([partition]))[partition]
        while self.position < end:
            await self._poll(consumer)
        self.caught_up.set()

    async def follow(self) -> None:
        """Read new versions as they come, until cancelled (outages retried)."""
        while True:
            try:
                if self._consumer is None:
                    await self.catch_up()
                assert self._consumer is not None
                await self._poll(self._consumer)
            except (KafkaError, OSError, TimeoutError) as exc:
                log.warning("rules topic unreachable (%r); retrying", exc)
                await self.close()
                await asyncio.sleep(1.0)

    async def _poll(self, consumer: AIOKafkaConsumer) -> None:
        batches = await consumer.getmany(timeout_ms=POLL_MS)
        for records in batches.values():
            for record in records:
                self.position = record.offset + 1
                if record.value is not None:
                    self._fold(record.value, record.offset)

    def _fold(self, value: bytes, offset: int) -> None:
        try:
            version = parse_version(value)
        except (RulesError, ValueError, KeyError) as exc:
            log.warning("rules record at offset %d skipped: %s", offset, exc)
            return
        if self.templates.apply(version) and self.on_change is not None:
            self.on_change(version.tenant_id)
        log.info(
            "rules of tenant %s: version %s %s",
            version.tenant_id,
            version.version,
            version.state,
            extra={"event": "rules.version", "tenant": version.tenant_id},
        )

    async def close(self) -> None:
        """Stop the consumer."""
        if self._consumer is not None:
            await self._consumer.stop()
            self._consumer = None
