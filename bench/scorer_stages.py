"""Where the scorer's CPU goes: CPU µs per event of each stage of its batch handler, in process.

Runs its own Redis (engagement.tools.localstack); no Kafka: the records are built in advance as the
consumer hands them over, and the score records go into aiokafka record batches that are never
sent. Same data as bench/scorer.py (10,000 candidates, batches of 500), the process set up as
`engagement scorer` sets itself up (GC thresholds, startup objects frozen, its event loop).
Stages, each over the same records (CPU time of this process, so Redis's own work is not in it):
  parse       raw bytes -> Interaction (orjson + pydantic), as services.scorer.parsing does
  store       ScoreStore.apply_batch of the parsed interactions (plan, Lua commands, replies)
  handler     BatchHandler.handle: parse + store + metrics + score records + record batches
  fenced      the handler while 10,000 erasure fences are up (the hour after a bulk erasure),
              none of them of these candidates: each batch checks the fences' change token;
              beside it the same with every batch reading them all (a new FenceCache per batch)
The reference is the store stage: the handler's CPU beyond it is the price of Kafka in and out.
Under the store stage, Redis's own time per event (INFO commandstats): in the scripts, and in the
commands they call; the rest is Lua itself.
The sum of the stages is what one scorer core must stay under for a target rate (20,000 events/s:
50 µs), beside the framework's own cost per event (bench/scorer.py, (d)).
--job-share 0.5: half the events name a job (bench/scorer.py's job_properties), so the store
stage scores them into job profiles and job leaderboards too.
Usage: python bench/scorer_stages.py [--events 60000] [--rounds 3] [--job-share 0.5]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import statistics
import sys
import time
import uuid
from asyncio import Future
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path

import orjson
import redis.asyncio as aioredis
from aiokafka.producer.message_accumulator import BatchBuilder

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import scorer as scorer_bench  # noqa: E402
from scorer import RULES, interaction  # noqa: E402  (bench/scorer.py: its events, its rules)

from engagement.faust.run import GC_THRESHOLDS, new_event_loop  # noqa: E402
from engagement.kafka.score_records import OutRecord  # noqa: E402
from engagement.model.records import Interaction  # noqa: E402
from engagement.model.rules import load_rules  # noqa: E402
from engagement.store.erasure_fence import FenceCache, Fences  # noqa: E402
from engagement.store.redis_store import ScoreStore  # noqa: E402
from engagement.tools import localstack  # noqa: E402
from services.scorer.handler import BatchHandler  # noqa: E402
from services.scorer.parsing import RawRecord, parse  # noqa: E402
from services.scorer.record_batches import produce_all  # noqa: E402
from tests.support.handlers import batch_handler  # noqa: E402

BATCH = 500
FENCES = 10_000
PARTITIONS = [0, 1, 2]


class ReadingAllFences(ScoreStore):
    """The store reading every fence for every batch, as before the change token."""

    async def fences(self, now: float, *, drop: bool = True) -> Fences:
        return await FenceCache().live(self.redis, self.keys, now, drop=drop)


def raw_records(n: int, candidates: int, now: float) -> list[RawRecord]:
    """bench/scorer.py's events, as the consumer hands them to the handler."""
    records = []
    for i in range(n):
        value = interaction(i, candidates, "bench", now)
        key = f"bench:{value['userId']}".encode()
        records.append(RawRecord(key, orjson.dumps(value), "interactions", i % 3, i))
    return records


class UnsentProducer:
    """As much of ``AIOKafkaProducer`` as ``produce_all`` uses; batches are filled, never sent."""

    async def partitions_for(self, topic: str) -> list[int]:
        return PARTITIONS

    def create_batch(self) -> BatchBuilder:
        return BatchBuilder(512 * 1024, 0)

    async def send_batch(self, batch: BatchBuilder, topic: str, *, partition: int) -> Future[None]:
        sent: Future[None] = asyncio.get_running_loop().create_future()
        sent.set_result(None)
        return sent


async def into_batches(records: Sequence[OutRecord]) -> None:
    """What the scorer's producer does with a batch's score records, short of sending them."""
    await produce_all(UnsentProducer(), records)


async def cpu_per_event(
    step: Callable[[Sequence[RawRecord]], Awaitable[object]],
    records: list[RawRecord],
    measured: Callable[[], Awaitable[object]] | None = None,
) -> float:
    """CPU seconds of this process per event for ``step`` over ``records`` in batches
    (``measured``: called once warmed up, as the measured part starts)."""
    await step(records[:BATCH])  # warm up (scripts loaded, caches filled)
    if measured is not None:
        await measured()
    gc.collect()
    gc.freeze()  # as `engagement scorer` does once started
    start = time.process_time()
    for k in range(BATCH, len(records), BATCH):
        await step(records[k : k + BATCH])
    return (time.process_time() - start) / (len(records) - BATCH)


async def one_round(redis_url: str, n: int, candidates: int) -> dict[str, float]:
    redis = aioredis.Redis.from_url(redis_url, socket_timeout=10)
    rules = load_rules(RULES)
    now = time.time()

    def store(kind: str, store_class: type[ScoreStore] = ScoreStore) -> ScoreStore:
        return store_class(redis, prefix=f"bench:{kind}{uuid.uuid4().hex[:6]}:", rules=rules)

    async def parse_only(batch: Sequence[RawRecord]) -> list[object]:
        return [parse(r) for r in batch]

    records = raw_records(n, candidates, now)
    parsed = [Interaction.model_validate_json(r.value or b"") for r in records]
    parsed_store = store("s")

    async def apply_parsed(batch: Sequence[RawRecord]) -> object:
        return await parsed_store.apply_batch(parsed[batch[0].offset : batch[-1].offset + 1])

    def handler(kind: str, store_class: type[ScoreStore] = ScoreStore) -> BatchHandler:
        return batch_handler(store(kind, store_class), into_batches)

    fenced, full_reads = handler("f"), handler("r", ReadingAllFences)
    fenced_ids = [f"gone{k}" for k in range(FENCES)]
    for fenced_store in (fenced.store, full_reads.store):
        await fenced_store.raise_fences("other", fenced_ids, datetime.fromtimestamp(now, UTC))

    try:
        figures = {
            "parse": await cpu_per_event(parse_only, records),
            "store": await cpu_per_event(apply_parsed, records, redis.config_resetstat),
        }
        figures |= await redis_per_event(redis, len(records) - BATCH)
        figures["handler"] = await cpu_per_event(handler("h").handle, records)
        gc.unfreeze()
        figures["fenced"] = await cpu_per_event(fenced.handle, records)
        gc.unfreeze()
        figures["full_reads"] = await cpu_per_event(full_reads.handle, records)
        return figures
    finally:
        gc.unfreeze()
        await redis.flushdb()  # its own throw-away Redis
        await redis.aclose()


async def redis_per_event(redis: aioredis.Redis, events: int) -> dict[str, float]:
    """Redis's own time per event (INFO commandstats, since the last reset): in its scripts
    (EVALSHA, the commands they call included), and in those commands alone; the rest is Lua."""
    stats: dict[str, dict[str, float]] = await redis.info("commandstats")
    scripts = stats.get("cmdstat_evalsha", {}).get("usec", 0.0)
    inside = sum(
        v["usec"] for name, v in stats.items() if name not in ("cmdstat_evalsha",)
        and not name.startswith(("cmdstat_config", "cmdstat_info", "cmdstat_script"))
    )  # fmt: skip
    return {"redis_scripts": scripts / events / 1e6, "redis_commands": inside / events / 1e6}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, default=60_000)
    parser.add_argument("--candidates", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--job-share", type=float, default=0.0, help="share of the events naming a job (0 to 1)"
    )
    args = parser.parse_args()
    scorer_bench.JOB_SHARE = args.job_share  # read by bench/scorer.py's interaction
    gc.set_threshold(*GC_THRESHOLDS)
    loop = new_event_loop()
    redis_proc = localstack.start_redis()
    try:
        rounds = [
            loop.run_until_complete(one_round(redis_proc.address, args.events, args.candidates))
            for _ in range(args.rounds)
        ]
    finally:
        redis_proc.stop()
        loop.close()
    median = {k: statistics.median(r[k] for r in rounds) * 1e6 for k in rounds[0]}
    print(
        f"scorer stages: {args.events:,} events, {args.candidates:,} candidates, batches of "
        f"{BATCH}, median of {args.rounds} rounds (CPU of this process per event), "
        f"{args.job_share:.0%} of the events naming a job"
    )
    print(f"  parse    raw bytes -> Interaction           {median['parse']:6.1f} µs")
    print(f"  store    apply_batch of parsed (reference)  {median['store']:6.1f} µs")
    print(f"  handler  parse + store + records + batches  {median['handler']:6.1f} µs")
    scripts, inside = median["redis_scripts"], median["redis_commands"]
    print(
        f"  Redis's own time per event under the store stage: {scripts:.1f} µs in the scripts "
        f"(apply per event, rank per batch), {inside:.1f} µs of it in the commands they call, "
        f"{scripts - inside:.1f} µs running Lua (script call, decoding, formatting numbers)"
    )
    print(
        f"  fenced   the handler with {FENCES:,} fences up      {median['fenced']:6.1f} µs "
        f"({median['fenced'] / median['handler']:.2f}x the handler; every batch reading them "
        f"all: {median['full_reads']:.1f} µs, {median['full_reads'] / median['handler']:.2f}x)"
    )
    beyond = median["handler"] - median["store"]
    print(
        f"  handler / store = {median['handler'] / median['store']:.2f}; beyond the store "
        f"{beyond:.1f} µs (parse {median['parse']:.1f}, records, metrics and batches "
        f"{beyond - median['parse']:.1f}); one core runs the handler alone at "
        f"{1e6 / median['handler']:,.0f} events/s (target 20,000/s: under 50 µs with Faust)"
    )


if __name__ == "__main__":
    main()
