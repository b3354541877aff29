"""The exact score model (docs/design.md §4): decay, the 1-100 mapping, rank keys, event points, merge.

Pure: no IO, time is passed in as epoch seconds (floats). The Lua scripts in ``engagement/store/lua``
compute the same formulas with the same libm calls (pow, exp, floor), so Python and Redis agree.

    R(t)  = Σ w_i · 2^(-(t - t_i)/h)
    score = min(100, max(1, floor(100 · (1 - exp(-max(R, 0)/scale)) + 0.5)))
    rank  = log2(R_ref) + t_ref/h        (-inf for R <= 0)

``score(t) >= s  ⟺  rank >= rank_bound(s, t)``, so one sorted set ordered by rank orders
candidates by their current score at every instant.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timezone, tzinfo
from typing import NamedTuple

from pydantic_core import TzInfo

from engagement.model.records import PILLARS, Interaction
from engagement.model.rules import Rules

PAGE_EVENT = "Page Viewed"
SECONDS_PER_DAY = 86400


def decay(value: float, dt_seconds: float, half_life_seconds: float) -> float:
    """``value`` after ``dt_seconds`` of exponential decay (negative dt grows it back)."""
    return float(value * 2.0 ** (-dt_seconds / half_life_seconds))


def score_of(raw: float, scale: float) -> int:
    """The 1-100 score of a raw sum (docs/design.md §4 formula, bit-identical to the Lua)."""
    positive = raw if raw > 0 else 0.0
    value = math.floor(100 * (1 - math.exp(-positive / scale)) + 0.5)
    return int(min(100, max(1, value)))


def rank_key(raw: float, t: float, half_life_seconds: float) -> float:
    """``log2(raw) + t/h``: orders candidates by current score at every instant; -inf if raw <= 0."""
    if raw <= 0:
        return -math.inf
    return math.log2(raw) + t / half_life_seconds


def raw_at_rank(rank: float, t: float, half_life_seconds: float) -> float:
    """The raw sum at instant ``t`` of a candidate with rank key ``rank`` (0 for -inf)."""
    if rank == -math.inf:
        return 0.0
    return float(2.0 ** (rank - t / half_life_seconds))


def raw_threshold(score: int, scale: float) -> float:
    """The smallest R with ``score_of(R) >= score`` (-inf for score <= 1, +inf above 100)."""
    if score <= 1:
        return -math.inf
    if score > 100:
        return math.inf
    return scale * math.log(100.0 / (100.5 - score))


def rank_bound(score: int, t: float, scale: float, half_life_seconds: float) -> float:
    """Rank key bound: at instant ``t``, ``score >= score`` ⟺ ``rank_key >= bound``."""
    threshold = raw_threshold(score, scale)
    if threshold in (-math.inf, math.inf):
        return threshold
    return math.log2(threshold) + t / half_life_seconds


def crossing_time(rank: float, score: int, scale: float, half_life_seconds: float) -> float:
    """The instant at which a candidate with ``rank`` decays below ``score`` (``+inf`` never)."""
    threshold = raw_threshold(score, scale)
    if threshold == -math.inf:
        return math.inf
    if rank == -math.inf:
        return -math.inf
    return half_life_seconds * (rank - math.log2(threshold))


class ScoredEvent(NamedTuple):
    """One scoreable interaction: points already multiplied by the channel multiplier.

    Immutable like the other per-event values (``Snapshot``, ``ApplyOutcome``): a named tuple,
    built several times faster than a frozen dataclass on the scorer's hot path."""

    message_id: str
    event: str
    pillar: str
    channel: str
    points: float
    t: float
    received_at: float
    daily_cap: int | None = None

    @property
    def day(self) -> int:
        """The UTC day number of ``t`` (the daily-cap bucket)."""
        return math.floor(self.t / SECONDS_PER_DAY)


def epoch(moment: datetime) -> float:
    """Epoch seconds of an aware (or UTC-naive) datetime."""
    zone = moment.tzinfo
    if zone is None:
        return moment.replace(tzinfo=UTC).timestamp()
    start = _EPOCH_IN.get(zone)
    if start is None:
        if type(zone) not in _FIXED_OFFSET_ZONES:
            return moment.timestamp()
        start = _EPOCH_IN[zone] = _EPOCH.astimezone(zone)
    # timestamp() without its utcoffset() calls (slow for pydantic's TzInfo): the difference of
    # two datetimes with the same fixed-offset tzinfo is exact without offsets
    return (moment - start).total_seconds()


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_FIXED_OFFSET_ZONES = (timezone, TzInfo)  # what orjson/pydantic/fromisoformat give
_EPOCH_IN: dict[tzinfo, datetime] = {}  # the epoch in each fixed offset seen (a few)


def event_name(interaction: Interaction) -> str | None:
    """The rules event name of an interaction: ``page`` calls score as "Page Viewed"."""
    if interaction.type == "page":
        return PAGE_EVENT
    if interaction.type == "track":
        return interaction.event
    return None


def event_points(interaction: Interaction, rules: Rules) -> ScoredEvent | None:
    """The scored event of an interaction, or None when the rules do not score it."""
    name = event_name(interaction)
    rule = rules.events.get(name) if name else None
    if rule is None or name is None:
        return None
    received = epoch(interaction.receivedAt)
    channel = interaction.channel
    return ScoredEvent(  # positional: this runs for every scored event
        interaction.messageId,
        name,
        rule.pillar,
        channel,
        rule.points * rules.channels.get(channel, 1.0),  # rules.multiplier(channel)
        min(epoch(interaction.timestamp), received),
        received,
        rule.daily_cap,
    )


@dataclass(frozen=True)
class Profile:
    """Decayed sums of one candidate at reference time ``t_ref`` (None: no scored event yet)."""

    t_ref: float | None = None
    raw: float = 0.0
    pillars: Mapping[str, float] = field(default_factory=lambda: dict.fromkeys(PILLARS, 0.0))
    channels: Mapping[str, float] = field(default_factory=dict)

    def at(self, t: float, half_life_seconds: float) -> Profile:
        """The same sums decayed to instant ``t``."""
        if self.t_ref is None:
            return replace(self, t_ref=t)
        dt = t - self.t_ref
        return Profile(
            t_ref=t,
            raw=decay(self.raw, dt, half_life_seconds),
            pillars={k: decay(v, dt, half_life_seconds) for k, v in self.pillars.items()},
            channels={k: decay(v, dt, half_life_seconds) for k, v in self.channels.items()},
        )


def add_event(profile: Profile, event: ScoredEvent, half_life_seconds: float) -> Profile:
    """Add one event: the reference moves forward to the latest event time; late events decay."""
    t_ref = event.t if profile.t_ref is None else max(profile.t_ref, event.t)
    base = profile.at(t_ref, half_life_seconds)
    w = decay(event.points, t_ref - event.t, half_life_seconds)
    pillars = dict(base.pillars)
    pillars[event.pillar] = pillars.get(event.pillar, 0.0) + w
    channels = dict(base.channels)
    channels[event.channel] = channels.get(event.channel, 0.0) + w
    return Profile(t_ref=t_ref, raw=base.raw + w, pillars=pillars, channels=channels)


def merge_profiles(a: Profile, b: Profile, half_life_seconds: float) -> Profile:
    """The exact sum of two profiles, aligned at the later reference time."""
    if a.t_ref is None:
        return b
    if b.t_ref is None:
        return a
    t_ref = max(a.t_ref, b.t_ref)
    x, y = a.at(t_ref, half_life_seconds), b.at(t_ref, half_life_seconds)
    return Profile(
        t_ref=t_ref,
        raw=x.raw + y.raw,
        pillars=_add_maps(x.pillars, y.pillars),
        channels=_add_maps(x.channels, y.channels),
    )


def _add_maps(x: Mapping[str, float], y: Mapping[str, float]) -> dict[str, float]:
    return {k: x.get(k, 0.0) + y.get(k, 0.0) for k in {*x, *y}}


def closed_form(events: Iterable[ScoredEvent], t: float, rules: Rules) -> Profile:
    """Σ w_i·2^(-(t-t_i)/h) per pillar/channel/total, computed directly (for tests and docs).

    Duplicate messageIds count once; daily caps apply in the given (arrival) order.
    """
    h = rules.half_life_seconds
    seen: set[str] = set()
    per_day: dict[tuple[int, str], int] = {}
    raw, pillars, channels = 0.0, dict.fromkeys(PILLARS, 0.0), dict[str, float]()
    for event in events:
        if event.message_id in seen:
            continue
        seen.add(event.message_id)
        bucket = (event.day, event.event)
        if event.daily_cap is not None and per_day.get(bucket, 0) >= event.daily_cap:
            continue
        per_day[bucket] = per_day.get(bucket, 0) + 1
        w = event.points * 2.0 ** (-(t - event.t) / h)
        raw += w
        pillars[event.pillar] += w
        channels[event.channel] = channels.get(event.channel, 0.0) + w
    return Profile(t_ref=t, raw=raw, pillars=pillars, channels=channels)
