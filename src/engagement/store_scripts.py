"""Arguments of the Lua scripts in ``engagement/lua`` and decoding of their replies.

Every candidate script starts with ``common.lua`` and reads the same ARGV[1] (config_args):
half-life seconds, score scale, rules version, contributions kept, then enter/exit per tier,
joined by \\x1f; the script's own arguments follow.
"""

from __future__ import annotations

from importlib import resources
from typing import Any

from engagement.records import Interaction
from engagement.rules import Rules
from engagement.score_views import PILLAR_FIELDS
from engagement.scoring import ScoredEvent


def lua_source(name: str) -> str:
    """The text of a candidate script with the shared ``common.lua`` prepended."""
    folder = resources.files("engagement").joinpath("lua")
    body = folder.joinpath(f"{name}.lua").read_text(encoding="utf-8")
    if name == "rank":
        return body
    return folder.joinpath("common.lua").read_text(encoding="utf-8") + "\n" + body


def config_args(rules: Rules, contributions_kept: int) -> list[bytes]:
    """ARGV[1] of every candidate script (``read_config`` in common.lua), encoded once."""
    parts = [
        repr(rules.half_life_seconds),
        repr(rules.score_scale),
        rules.version,
        str(contributions_kept),
        *[str(v) for tier in rules.tiers for v in (tier.enter, tier.exit)],
    ]
    return ["\x1f".join(parts).encode()]


def event_args(event: ScoredEvent, dedupe_window_seconds: float) -> list[str]:
    """ARGV of apply.lua after the config header."""
    return [
        event.message_id,
        repr(event.t),
        repr(event.received_at),
        repr(event.points),
        PILLAR_FIELDS[event.pillar],
        event.channel,
        event.event,
        str(event.daily_cap or 0),
        repr(dedupe_window_seconds),
    ]


def merge_source(interaction: Interaction) -> str | None:
    """The candidate an identify/alias folds into ``userId`` (alias previousId: see docs)."""
    if interaction.type == "identify":
        return f"anon:{interaction.anonymousId}" if interaction.anonymousId else None
    previous = interaction.previousId
    if not previous:
        return None
    return f"anon:{previous}" if previous == interaction.anonymousId else previous


def frozen_args(source: str, result: list[Any]) -> list[str]:
    snap = text(result[1]).split("\x1f")
    channels = snap[11:]
    caps = [text(x) for x in result[2]]
    contributions = [text(x) for x in result[3]]
    return [
        source,
        *snap[0:5],
        snap[8],
        str(len(channels) // 2),
        *channels,
        str(len(caps) // 2),
        *caps,
        *contributions,
    ]


def text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
