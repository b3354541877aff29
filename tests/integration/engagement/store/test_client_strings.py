"""Every string a client can send round-trips through the Lua scripts unchanged (real Redis):
ids, channel and event names holding the replies' separator U+001F, the escape U+001B, other
control characters, quotes, backslashes, any Unicode scalar value and very long strings."""

from __future__ import annotations

import uuid

import redis.asyncio as aioredis
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from engagement.model.rules import EventRule
from engagement.store.redis_store import ScoreStore
from tests.unit.engagement.model.strategies import RULES, T0, interaction

# any Unicode scalar value (surrogates are no scalar values: UTF-8 cannot carry them)
scalars = st.characters(blacklist_categories=["Cs"])
tricky = st.sampled_from(["\x1f", "\x1b", "\x1be", "\x1bu", "\x00", "\\", '"', "'", "|", ":"])
client_strings = st.lists(st.one_of(scalars, tricky), min_size=1, max_size=24).map("".join)

EXAMPLES = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@EXAMPLES
@given(
    user=client_strings,
    anonymous=client_strings,
    channel=client_strings,
    event=client_strings,
    message=client_strings,
)
@example(user="sep\x1fuser", anonymous="sep-anon", channel="web", event="Job Viewed", message="m")
@example(
    user="u" * 100_000, anonymous="\x1b" * 9, channel="\x1f\x1b", event="\x1bu", message="\x1f"
)
async def test_client_strings_round_trip_through_a_merge_and_a_redirect(
    redis_client: aioredis.Redis,
    redis_prefix: str,
    user: str,
    anonymous: str,
    channel: str,
    event: str,
    message: str,
) -> None:
    # given a template scoring the event name, and a fresh key space per example
    rules = RULES.model_copy(
        update={"events": {**RULES.events, event: EventRule(pillar="activity", points=4)}}
    )
    store = ScoreStore(redis_client, prefix=f"{redis_prefix}{uuid.uuid4().hex}:", rules=rules)
    # when the anonymous visitor's event is scored, it is identified as the user, and a later
    # event of the anonymous id is redirected to the user
    first = interaction(message, T0, event=event, user_id=None, anonymous_id=anonymous)
    first = first.model_copy(update={"channel": channel})
    identify = interaction(f"{message}-identify", T0 + 1, kind="identify", user_id=user)
    identify = identify.model_copy(update={"anonymousId": anonymous})
    later = first.model_copy(
        update={"messageId": f"{message}-later", "timestamp": first.receivedAt}
    )
    scored, merged = await store.apply_batch([first, identify])
    [redirected] = await store.apply_batch([later])
    # then every outcome names the strings as sent
    assert scored.outcome == "scored" and scored.candidate_id == f"anon:{anonymous}"
    assert scored.after is not None and list(scored.after.channels) == [channel]
    assert (merged.outcome, merged.candidate_id, merged.merged_from) == (
        "merged",
        user,
        f"anon:{anonymous}",
    )
    assert merged.merged_source is not None and merged.merged_source.merged_into == user
    assert (redirected.candidate_id, redirected.redirected_from) == (user, f"anon:{anonymous}")
    # and the user's profile holds them: its channel, its events and their messageIds
    view = await store.get_candidate("acme", user, T0 + 2)
    assert view is not None
    assert list(view.state.channels) == [channel]
    assert {(c.message_id, c.event, c.channel) for c in view.contributions} == {
        (message, event, channel),
        (f"{message}-later", event, channel),
    }
    # and the anonymous id still reads as the user
    anonymous_view = await store.get_candidate("acme", f"anon:{anonymous}", T0 + 2)
    assert anonymous_view is not None and anonymous_view.candidate_id == user
