"""Values the score store returns: state snapshots, apply outcomes, candidate views, leaderboards.

Times are epoch seconds (floats); ``as_dict()`` gives the read API's camelCase JSON shape.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal, NamedTuple

from engagement.model.jobs import JobState
from engagement.model.rules import Rules

PILLAR_FIELDS = {"entrance": "e", "activity": "a", "interaction": "i"}
PILLAR_OF_FIELD = {v: k for k, v in PILLAR_FIELDS.items()}

Outcome = Literal["scored", "duplicate", "unscored", "capped", "merged", "conflict"]


def iso(t: float | None) -> str | None:
    """ISO 8601 UTC of an epoch instant (None stays None)."""
    return None if t is None else datetime.fromtimestamp(t, UTC).isoformat()


class Snapshot(NamedTuple):
    """A candidate's state at instant ``as_of`` (sums decayed to it; score/tier from them).

    A named tuple (immutable; built for every scored event, several times faster than a frozen
    dataclass), like ``ApplyOutcome``."""

    as_of: float | None
    raw: float
    pillars: Mapping[str, float]
    channels: Mapping[str, float]
    sequence: int
    score: int
    tier: str
    last_event_at: float | None = None
    rules_version: str | None = None
    merged_into: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """camelCase fields as in ScoreChange (asOf as ISO 8601)."""
        return {
            "score": self.score,
            "tier": self.tier,
            "raw": self.raw,
            "pillars": dict(self.pillars),
            "channels": dict(self.channels),
            "sequence": self.sequence,
            "asOf": iso(self.as_of),
            "rulesVersion": self.rules_version,
            "lastEventAt": iso(self.last_event_at),
        }


class Previous(NamedTuple):
    """A candidate's state just before a change, as far as a score record needs it (its
    ``previousScore`` and ``previousTier``, and the sequence that tells a change happened)."""

    sequence: int
    score: int
    tier: str


def previous(snapshot: Snapshot) -> Previous:
    """The ``Previous`` of a full snapshot."""
    return Previous(snapshot.sequence, snapshot.score, snapshot.tier)


def _tier_name(g: str, rules: Rules) -> str:
    """The name of a Lua tier number (1-based), clamped to the template's tiers."""
    name = rules.tier_by_number.get(g)
    if name is not None:
        return name
    tiers = rules.tier_names
    k = int(g) - 1
    return tiers[0 if k < 0 else min(k, len(tiers) - 1)]


# The two decoders below run for every scored event: positional Snapshot arguments, in field
# order (as_of, raw, pillars, channels, sequence, score, tier, last_event_at, rules_version,
# merged_into).


def unescape(text: str) -> str:
    """A client's string as the Lua scripts' ``esc`` found it (``\\x1b`` and ``\\x1f`` in it are
    sent as ``\\x1be`` and ``\\x1bu``, so that no string splits a reply joined by ``\\x1f``)."""
    if "\x1b" not in text:
        return text
    return _ESCAPED.sub(lambda m: "\x1f" if m.group(1) == "u" else "\x1b", text)


_ESCAPED = re.compile("\x1b([eu])")


def parse_snapshot(encoded: bytes | str, rules: Rules) -> Snapshot:
    """Decode the Lua snapshot ``t␟r␟e␟a␟i␟s␟g␟score␟l␟v␟m␟ch1␟v1...`` (␟ = \\x1f; the version,
    merged_into and channel names escaped: ``unescape``)."""
    whole = encoded.decode() if isinstance(encoded, bytes) else encoded
    text = whole.split("\x1f")
    t, r, e, a, i, seq, g, score, last, version, merged = text[:11]
    if len(text) == 13:  # one channel, the usual case
        channels = {text[11]: float(text[12])}
    elif len(text) % 2 == 0:
        raise ValueError(f"snapshot has an unpaired channel field: {text[-1]!r}")
    else:
        channels = dict(zip(text[11::2], map(float, text[12::2]), strict=True))
    if "\x1b" in whole:  # rare: a string holding \x1b or \x1f
        version, merged = unescape(version), unescape(merged)
        channels = {unescape(name): value for name, value in channels.items()}
    as_of = float(t) if t else None
    return Snapshot(
        as_of,
        float(r),
        {"entrance": float(e), "activity": float(a), "interaction": float(i)},
        channels,
        int(seq),
        int(score),
        _tier_name(g, rules),
        as_of if last == t else float(last) if last else None,
        version or None,
        merged or None,
    )


def parse_before(encoded: bytes | str, rules: Rules) -> Previous:
    """Decode apply.lua's state just before an event: ``s␟g␟score``."""
    text = encoded.decode() if isinstance(encoded, bytes) else encoded
    seq, g, score = text.split("\x1f")
    return Previous(int(seq), int(score), _tier_name(g, rules))


def parse_replies(kind: str, result: list[Any], rules: Rules) -> tuple[Previous, Snapshot]:
    """(before, after) of a candidate script reply; one snapshot means both (nothing changed)."""
    after = parse_snapshot(result[-1], rules)
    if len(result) == 2:
        return previous(after), after
    if kind == "scored":
        return parse_before(result[1], rules), after
    return previous(parse_snapshot(result[1], rules)), after


class ApplyOutcome(NamedTuple):
    """What applying one interaction did.

    ``before`` is the state just before the change at the new ``as_of`` instant (previous tier
    already decayed to it; its sequence, score and tier), ``after`` the state after it; for
    duplicates and capped events both are the current stored state; both are None for unscored
    interactions. ``candidate_id`` is the candidate finally written (after a redirect of a
    merged anonymous id, whose id is then in ``redirected_from``). Merges (identify/alias):
    ``candidate_id`` is the candidate ``userId`` resolves to (``userId`` itself for a refused
    merge, a ``conflict``), ``merged_from`` the folded-in id and ``merged_source`` its state after
    step 1 (or after it was undone; None when refused before step 1). ``jobs``: the (candidate,
    job) profiles the change moved or removed (``engagement.model.jobs``), empty for most.
    """

    outcome: Outcome
    tenant_id: str
    candidate_id: str
    message_id: str
    event: str | None
    rules_version: str
    before: Previous | None = None
    after: Snapshot | None = None
    redirected_from: str | None = None
    merged_from: str | None = None
    merged_source: Snapshot | None = None
    jobs: tuple[JobState, ...] = ()

    @property
    def score_changed(self) -> bool:
        """True when the integer score differs between ``before`` and ``after``."""
        return (
            self.before is not None
            and self.after is not None
            and (self.before.score != self.after.score)
        )


@dataclass(frozen=True)
class Contribution:
    """One recent scored event: its original points and what they are worth at ``as_of``."""

    message_id: str
    event: str
    pillar: str
    channel: str
    points: float
    current_points: float
    at: float

    def as_dict(self) -> dict[str, Any]:
        """camelCase JSON shape."""
        return {
            "messageId": self.message_id,
            "event": self.event,
            "pillar": self.pillar,
            "channel": self.channel,
            "points": self.points,
            "currentPoints": self.current_points,
            "at": iso(self.at),
        }


@dataclass(frozen=True)
class CandidateView:
    """A candidate as the read API shows it: every value decayed to ``state.as_of``."""

    tenant_id: str
    candidate_id: str
    state: Snapshot
    contributions: tuple[Contribution, ...] = ()
    merged_ids: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        """camelCase JSON shape of ``GET /v1/candidates/{id}``."""
        return {
            "tenantId": self.tenant_id,
            "candidateId": self.candidate_id,
            **self.state.as_dict(),
            "contributions": [c.as_dict() for c in self.contributions],
        }


@dataclass(frozen=True)
class LeaderboardEntry:
    """One candidate on the leaderboard, valued at the query instant."""

    candidate_id: str
    score: int
    tier: str
    raw: float
    rank: float

    def as_dict(self) -> dict[str, Any]:
        """camelCase JSON shape."""
        return {
            "candidateId": self.candidate_id,
            "score": self.score,
            "tier": self.tier,
            "raw": self.raw,
        }


@dataclass(frozen=True)
class LeaderboardPage:
    """Candidates by current score, highest first; pass ``next_cursor`` for the next page."""

    entries: tuple[LeaderboardEntry, ...]
    next_cursor: str | None
    as_of: float = 0.0


@dataclass(frozen=True)
class Erasure:
    """What ``erase`` removed: key count, merged anonymous ids erased with it, last sequence."""

    tenant_id: str
    candidate_id: str
    existed: bool
    removed_keys: int
    last_sequence: int
    merged_ids: tuple[str, ...] = field(default_factory=tuple)
