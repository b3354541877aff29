"""The Lua copy of the score model computes exactly what the Python model computes."""

from __future__ import annotations

import redis.asyncio as aioredis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engagement.model.rules import TierRule
from engagement.model.scoring import score_of
from engagement.model.tiers import decayed_index, moved_index
from engagement.store.redis_store import lua_source

TEMPLATES = [
    (TierRule(name="cold", enter=1, exit=1), TierRule(name="warm", enter=40, exit=35),
     TierRule(name="hot", enter=70, exit=65)),
    (TierRule(name="low", enter=1, exit=1), TierRule(name="high", enter=50, exit=50)),
    (TierRule(name="a", enter=1, exit=1), TierRule(name="b", enter=20, exit=10),
     TierRule(name="c", enter=30, exit=25), TierRule(name="d", enter=90, exit=30)),
]  # fmt: skip

PROBE = """
local cfg = read_config()
local k, s, r = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])  -- no keys: any node
return {tier_after_decay(k, s, cfg.tiers), tier_move(k, s, cfg.tiers), score_of(r, cfg.scale)}
"""


@settings(
    max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    st.sampled_from(TEMPLATES),
    st.data(),
    st.integers(min_value=1, max_value=100),
    st.floats(min_value=-1e3, max_value=1e4, allow_nan=False),
)
async def test_lua_tier_and_score_logic_equals_python(
    redis_client: aioredis.Redis,
    tiers: tuple[TierRule, ...],
    data: st.DataObject,
    score: int,
    raw: float,
) -> None:
    k = data.draw(st.integers(min_value=0, max_value=len(tiers) - 1))
    config = "\x1f".join(["86400", "50.0", "v", "10", *[f"{t.enter}\x1f{t.exit}" for t in tiers]])
    script = lua_source("apply").split("\n-- Apply one scored event")[0] + PROBE
    decayed, moved, lua_score = await redis_client.eval(  # type: ignore[misc]
        script, 0, config, str(k + 1), str(score), repr(raw)
    )
    assert decayed - 1 == decayed_index(k, score, tiers)
    assert moved - 1 == moved_index(k, score, tiers)
    assert lua_score == score_of(raw, 50.0)
