"""Why the rank scripts keep tier sets of 16 members or more as skiplists (lua/rank_lib.lua,
docs/design.md §5 "Tier sets").

Every scored event moves its candidate in a tier set: a ZADD of a member at a new score. Redis
keeps a sorted set of up to zset-max-listpack-entries (128) members as a listpack, where that move
is linear in the set's size. For each size, the same loop of ZADDs (a random member each time, to
a new score) runs inside Redis (one Lua call, Redis's own clock) on a listpack and on a skiplist
of the same members, the skiplist as the reference; then MEMORY USAGE of both.
Usage: python bench/tier_sets.py [--moves 20000]
"""

from __future__ import annotations

import argparse

import redis

from engagement.tools import localstack

SIZES = (8, 16, 32, 64, 100, 127)
PROBE = "~" * 100  # longer than zset-max-listpack-value: converts a set to a skiplist

MOVES = """
local key, n = KEYS[1], tonumber(ARGV[1])
local members = redis.call('ZRANGE', key, 0, -1, 'WITHSCORES')
local size = #members / 2
local t0 = redis.call('TIME')
for k = 1, n do
  local j = 2 * ((k * 7919) % size) + 1
  redis.call('ZADD', key, members[j + 1] + 0.001 * (k % 3), members[j])
end
local t1 = redis.call('TIME')
return (t1[1] - t0[1]) * 1000000 + (t1[2] - t0[2])
"""


def measure(client: redis.Redis, size: int, moves: int) -> dict[str, tuple[float, int]]:
    """µs per ZADD and bytes, of a listpack and a skiplist holding ``size`` members."""
    members = {f"cand-{k:05}": 2900.123456789 + k for k in range(size)}
    out = {}
    for encoding in ("listpack", "skiplist"):
        key = f"bench:tier_sets:{encoding}"
        client.zadd(key, members)
        if encoding == "skiplist":
            client.zadd(key, {PROBE: 0})
            client.zrem(key, PROBE)
        us = int(client.eval(MOVES, 1, key, moves)) / moves
        out[encoding] = (us, int(client.memory_usage(key) or 0))
        client.delete(key)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--moves", type=int, default=20_000)
    args = parser.parse_args()
    redis_proc = localstack.start_redis()
    try:
        client = redis.Redis.from_url(redis_proc.address)
        version = client.info("server")["redis_version"]
        print(f"tier set moves (ZADD of a member at a new score, Redis {version}), skiplist = ref")
        for size in SIZES:
            figures = measure(client, size, args.moves)
            (lp_us, lp_bytes), (sl_us, sl_bytes) = figures["listpack"], figures["skiplist"]
            print(
                f"  {size:4} members: listpack {lp_us:5.2f} µs, skiplist {sl_us:5.2f} µs "
                f"({lp_us / sl_us:4.1f}x); memory {lp_bytes:6,} B against {sl_bytes:6,} B"
            )
        client.close()
    finally:
        redis_proc.stop()


if __name__ == "__main__":
    main()
