"""The replay of a tenant's rebuild (``services.scorer.tenant_rebuild``): a consumer of every
interactions partition from its start that scores the tenant's records into the rebuild's
generation with the scorer's own batch handler, publishing nothing, up to a cut of the topic.
"""

from __future__ import annotations

from aiokafka import AIOKafkaConsumer, TopicPartition

from engagement.kafka.topics import Topics
from engagement.store.redis_store import ScoreStore
from services.scorer.handler import BatchHandler
from services.scorer.metrics import ScorerMetrics
from services.scorer.parsing import RawRecord

POLL_MS = 200


class Replay:
    """A consumer of every interactions partition from its start, scoring the tenant's records
    into ``store`` with the scorer's batch handler, publishing nothing."""

    def __init__(
        self, bootstrap_servers: str, topics: Topics, store: ScoreStore, tenant: str
    ) -> None:
        async def nothing(_records: object) -> None:
            raise AssertionError("a rebuild publishes nothing")

        self.handler = BatchHandler(
            store=store,
            send_all=nothing,
            send_acked=nothing,
            metrics=ScorerMetrics(),
            dlq_topic=topics.interactions_dlq,
            changes_topic=topics.scores_changed,
            latest_topic=topics.scores_latest,
            interactions_topic=topics.interactions,
            publish=False,
        )
        self.prefix = f"{tenant}:".encode()
        self.topic = topics.interactions
        self.consumer = AIOKafkaConsumer(
            bootstrap_servers=bootstrap_servers,
            enable_auto_commit=False,
            client_id="engagement-tenant-rebuild",
        )
        self.position: dict[int, int] = {}

    async def start(self, partitions: set[int]) -> None:
        """Assign every partition, from its start."""
        await self.consumer.start()
        tps = [TopicPartition(self.topic, p) for p in sorted(partitions)]
        self.consumer.assign(tps)
        await self.consumer.seek_to_beginning(*tps)
        self.position = {tp.partition: 0 for tp in tps}

    async def ends(self) -> dict[int, int]:
        tps = [TopicPartition(self.topic, p) for p in self.position]
        return {tp.partition: end for tp, end in (await self.consumer.end_offsets(tps)).items()}

    async def until(self, ends: dict[int, int], *, cut: bool = False) -> None:
        """Score the tenant's records up to ``ends`` (a cut: up to and without its markers)."""
        while any(self.position.get(p, 0) < end + (1 if cut else 0) for p, end in ends.items()):
            batches = await self.consumer.getmany(timeout_ms=POLL_MS, max_records=2000)
            raw = []
            for tp, records in batches.items():
                for r in records:
                    self.position[tp.partition] = r.offset + 1
                    if cut and r.offset >= ends[tp.partition]:
                        continue
                    if (
                        r.key is not None
                        and r.key.startswith(self.prefix)
                        and not _is_marker(r.value)
                    ):
                        raw.append(RawRecord(r.key, r.value, r.topic, r.partition, r.offset))
            if raw:
                await self.handler.handle(raw)

    async def stop(self) -> None:
        await self.consumer.stop()


def _is_marker(value: bytes | None) -> bool:
    return value is not None and b'"rebuild_marker"' in value[:64]
