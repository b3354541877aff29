"""A tenant's rebuild on Tansu, the broker ``make run`` uses (``POST /v1/rules/rebuild`` is a
feature of the dev stack): the rebuild reads the live scorers' committed offsets from it. Tansu
answers an OffsetFetch for all of a group's partitions (topics null, as aiokafka's admin client
asks without partitions) without its topics array, which aiokafka cannot decode: the rebuild names
the partitions (its own Tansu, whatever broker the session runs on)."""

from __future__ import annotations

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from engagement.kafka.topics import Topics
from engagement.tools.localstack import start_tansu
from services.scorer.tenant_rebuild import Rebuild


async def test_the_rebuild_reads_how_far_the_live_scorers_committed_on_tansu() -> None:
    # given a live group that committed 2 of the 3 records of partition 0, none of partition 1
    tansu = start_tansu()
    try:
        topics = Topics("tansu-")
        producer = AIOKafkaProducer(bootstrap_servers=tansu.address)
        await producer.start()
        try:
            for partition in (0, 0, 0, 1):
                await producer.send_and_wait(topics.interactions, b"{}", partition=partition)
        finally:
            await producer.stop()
        live = AIOKafkaConsumer(
            bootstrap_servers=tansu.address, group_id="live", enable_auto_commit=False
        )
        await live.start()
        try:
            first = TopicPartition(topics.interactions, 0)
            live.assign([first])
            await live.commit({first: 2})
        finally:
            await live.stop()
        rebuild = Rebuild(
            redis=None,  # type: ignore[arg-type]  # reading offsets needs the broker only
            base=None,  # type: ignore[arg-type]
            templates=None,  # type: ignore[arg-type]
            bootstrap_servers=tansu.address,
            topics=topics,
            live_group="live",
        )

        # when the rebuild bounds what the live scorers may still score before markers at 3 and 1
        behind = await rebuild.behind({0: 3, 1: 1})

        # then it is what the group has not committed past
        assert behind == {0: 1, 1: 1}
    finally:
        tansu.stop()
