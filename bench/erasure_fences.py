"""Why the scorer keeps a cache of the erasure fences instead of asking for its batch's own ids.

Once per batch the scorer needs the fences up (engagement.store.erasure_fence). Two ways:
  cache   FenceCache.live: one round trip for the fences hash's change token and size, the hash
          read in full only when another writer changed it (what the scorer does)
  hmget   HMGET of the fence ids of the batch's candidates (500 events, 500 ids), the simpler
          design: no cache, no token; with the ids' digests cached (the same candidates again)
          and not (new candidates each batch)
each with no fence up and with 10,000 up (the hour after a bulk erasure). Figures: CPU µs of
this process per batch and per event, the cache's as the reference (x = times its cost). The
HMGET design would also need the ids before the batch is parsed, which it is lazily, while
Redis applies it, and a second round trip for the ids that identifies and aliases fold in.
Usage: python bench/erasure_fences.py [--batches 300]
"""

from __future__ import annotations

import argparse
import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

import redis.asyncio as aioredis

from engagement.store.erasure_fence import FenceCache, fence_id, raise_fences
from engagement.store.redis_keys import KeyLayout
from engagement.tools import localstack

BATCH = 500


async def cpu_per_call(call: Callable[[], Awaitable[object]], times: int) -> float:
    """CPU seconds of this process per call."""
    await call()
    started = time.process_time()
    for _ in range(times):
        await call()
    return (time.process_time() - started) / times


async def measure(address: str, fences: int, batches: int) -> dict[str, float]:
    redis = aioredis.Redis.from_url(address)
    keys = KeyLayout(f"bench:{uuid.uuid4().hex[:6]}:")
    now = time.time()
    if fences:
        ids = [f"gone{i}" for i in range(fences)]
        await raise_fences(redis, keys, "other", ids, datetime.fromtimestamp(now, UTC))
    cache = FenceCache()
    batch = [f"u{i}" for i in range(BATCH)]

    async def hmget(ids: list[str]) -> dict[str, object]:
        fids = [fence_id("acme", cand) for cand in ids]
        values = await redis.hmget(keys.erasing, fids)
        return {fid: value for fid, value in zip(fids, values, strict=True) if value is not None}

    async def hmget_new() -> dict[str, object]:
        tag = uuid.uuid4().hex[:8]
        return await hmget([f"{cand}-{tag}" for cand in batch])

    figures = {
        "cache": await cpu_per_call(lambda: cache.live(redis, keys, now), batches),
        "hmget, digests cached": await cpu_per_call(lambda: hmget(batch), batches),
        "hmget, new ids": await cpu_per_call(hmget_new, batches),
    }
    await redis.delete(keys.erasing)
    await redis.aclose()
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=300)
    args = parser.parse_args()
    redis_proc = localstack.start_redis()
    try:
        for fences in (0, 10_000):
            figures = asyncio.run(measure(redis_proc.address, fences, args.batches))
            reference = figures["cache"]
            print(f"fences up: {fences:,} (batches of {BATCH}, CPU of this process)")
            for name, seconds in figures.items():
                print(
                    f"  {name:<22} {seconds * 1e6:8.1f} µs per batch "
                    f"{seconds * 1e6 / BATCH:6.2f} µs per event   {seconds / reference:5.1f}x"
                )
    finally:
        redis_proc.stop()


if __name__ == "__main__":
    main()
