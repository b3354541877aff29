"""After ``engagement rebuild --tenant`` moved a tenant to a new generation of keys, the notifier
reads that generation: the decay sweep finds its crossings in the new tier sets and decides them
from the new profiles (``engagement.store.templated_store.tenant_layouts``). Real Redis; the
store and the sweep in process, the alerts topic captured."""

from __future__ import annotations

from dataclasses import replace

import redis.asyncio as aioredis

from engagement.model.alerts import Notified, tier_level
from engagement.model.scoring import crossing_time, rank_key
from engagement.model.templates import Templates, TemplateVersion
from engagement.model.webhooks import WebhookConfig
from engagement.store.redis_keys import KeyLayout
from engagement.store.templated_store import TemplatedStore, tenant_layouts
from services.notifier.delivery_queue import DeliveryQueue
from services.notifier.metrics import NotifierMetrics
from services.notifier.publisher import AlertPublisher
from services.notifier.state import NotifiedStore
from services.notifier.sweep import DecaySweep
from tests.integration.notifier.test_exactly_once_alerts import Topic
from tests.unit.engagement.model.strategies import RULES, T0, interaction


def rebuilt(generation: int) -> TemplateVersion:
    """acme's template as a rebuild into ``generation`` activates it (same points and tiers)."""
    rules = RULES.model_copy(update={"version": f"acme-g{generation}"})
    version = TemplateVersion("acme", rules, "", "toml", "active", "t", "t", True)  # type: ignore[arg-type]
    return replace(version, generation=generation)


async def test_the_sweep_reads_a_rebuilt_tenants_new_keys(
    redis_client: aioredis.Redis, redis_prefix: str
) -> None:
    # given acme rebuilt into generation 1 and scored hot there, announced hot
    templates = Templates(RULES)
    assert templates.apply(rebuilt(1))
    store = TemplatedStore(redis_client, prefix=redis_prefix, templates=templates)
    [*_, last] = await store.apply_batch(
        [
            interaction("a1", T0, event="Application Submitted", user_id="c1"),
            interaction("a2", T0, event="Application Submitted", user_id="c1"),
        ]
    )
    assert last.after is not None and last.after.tier == "hot"
    layouts = tenant_layouts(redis_prefix, templates)
    assert layouts("acme").tier_set("acme", "hot") != KeyLayout(redis_prefix).tier_set(
        "acme", "hot"
    )
    assert await redis_client.zscore(layouts("acme").tier_set("acme", "hot"), "c1") is not None
    topic = Topic()
    state = NotifiedStore(
        redis_client, prefix=redis_prefix, tiers=RULES.tier_names, layout_for=layouts
    )
    await state.store({"acme:c1": (Notified("hot", last.after.sequence), 2, b"")}, base={})
    publisher = AlertPublisher(
        send=topic.send,
        queue=DeliveryQueue(redis_client, prefix=redis_prefix, retention_s=3600),
        webhooks=WebhookConfig(),
        metrics=NotifierMetrics(),
    )
    sweep = DecaySweep(
        redis_client,
        KeyLayout(redis_prefix),
        RULES,
        state,
        publisher,
        interval=1.0,
        rules_for=templates.rules_for,
        layout_for=layouts,
    )
    # when the sweep runs after c1 fell below hot's exit
    h = RULES.half_life_seconds
    crossed = crossing_time(
        rank_key(last.after.raw, T0, h), RULES.tiers[2].exit, RULES.score_scale, h
    )
    alerts = await sweep.run(now=crossed + 1)
    # then it found c1 in generation 1's tier set and read its profile there
    assert alerts is not None
    assert [(a.type, a.tier, a.sequence) for a in alerts] == [
        ("candidate.cooled", "warm", last.after.sequence)
    ]
    loaded = await state.load(["acme:c1"])
    assert loaded.stored["acme:c1"].sequence == last.after.sequence
    assert tier_level(RULES, alerts[0].tier) == 1
