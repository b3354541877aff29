"""The chaos suite's four checks, pure: each returns one line per candidate that fails it.

The expected state of a candidate is computed here from the acknowledged events alone (the closed
form of ``tests/integration/scorer/expected.py``), step by step in the order the scorer met them
(their first occurrence on the interactions topic: one candidate's events are in one partition,
and the scorer applies a partition in offset order), so the sequence, score, raw and tier after
every step are known, and with them which steps changed the integer score.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from engagement.model.rules import TierRule
from engagement.model.scoring import rank_key, raw_at_rank
from engagement.model.tiers import tier_after_decay, tier_after_event
from tests.chaos.observe import Profile
from tests.integration.scorer.expected import Sent, expected_raw, score_of


@dataclass(frozen=True)
class Step:
    """The state after the k-th distinct event (k = sequence)."""

    sequence: int
    t: float
    raw: float
    score: int
    score_before: int  # the state before the event, at the new reference time
    tier: str

    @property
    def changed(self) -> bool:
        return self.score != self.score_before


def tier_rules(rules: Mapping[str, Any]) -> list[TierRule]:
    return [TierRule(**tier) for tier in rules["tiers"]]


def steps(events: Sequence[Sent], rules: Mapping[str, Any]) -> list[Step]:
    """The candidate's states after each of ``events`` (distinct, in the order applied)."""
    tiers, scale = tier_rules(rules), rules["score_scale"]
    out: list[Step] = []
    tier, t = tiers[0].name, -math.inf
    for k in range(1, len(events) + 1):
        t = max(t, events[k - 1].at.timestamp())
        raw = expected_raw(events[:k], rules, t)
        before = score_of(expected_raw(events[: k - 1], rules, t), scale)
        score = score_of(raw, scale)
        tier = tier_after_event(tier, before, score, tiers)
        out.append(Step(k, t, raw, score, before, tier))
    return out


def applied_order(
    interactions: Iterable[tuple[int, int, bytes, Any]], acknowledged: Mapping[str, Sent]
) -> tuple[dict[str, list[Sent]], list[str]]:
    """Each candidate's distinct events in the order of their first record on the topic, and the
    message ids on the topic that no acknowledged request carried."""
    seen: set[str] = set()
    order: dict[str, list[Sent]] = {}
    strangers: list[str] = []
    for _, _, _, value in sorted(interactions, key=lambda r: (r[0], r[1])):
        message_id = value["messageId"]
        if message_id in seen:
            continue
        seen.add(message_id)
        sent = acknowledged.get(message_id)
        if sent is None:
            strangers.append(message_id)
        else:
            order.setdefault(sent.candidate, []).append(sent)
    return order, strangers


def close(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)


def check_scores(
    by_candidate: Mapping[str, Sequence[Sent]],
    stored: Mapping[str, Profile | None],
    rules: Mapping[str, Any],
) -> list[str]:
    """(1) Every stored score is the closed form over the acknowledged events; its sequence is
    the number of distinct events and its reference time the latest event time."""
    problems = []
    for cand, events in sorted(by_candidate.items()):
        profile = stored.get(cand)
        distinct = list({e.message_id: e for e in events}.values())
        if profile is None:
            problems.append(f"{cand}: no stored profile ({len(distinct)} events acknowledged)")
            continue
        raw = expected_raw(distinct, rules, profile.t)
        latest = max(e.at.timestamp() for e in distinct)
        score, want = (
            score_of(profile.raw, rules["score_scale"]),
            score_of(raw, rules["score_scale"]),
        )
        if (
            score != want
            or not close(profile.raw, raw)
            or profile.sequence != len(distinct)
            or abs(profile.t - latest) > 1e-3
        ):
            problems.append(
                f"{cand}: stored score {score} raw {profile.raw!r} sequence {profile.sequence} "
                f"t {profile.t}; closed form {want} raw {raw!r} over {len(distinct)} events, "
                f"latest at {latest}"
            )
    return problems


def tier_now(profile: Profile, at: float, rules: Mapping[str, Any]) -> str:
    """The tier the candidate holds at ``at``: its stored tier, decayed (hysteresis) to ``at``,
    with the notifier's own arithmetic (rank keys)."""
    tiers, h = tier_rules(rules), rules["half_life_days"] * 86400.0
    stored = tiers[min(max(profile.tier_number, 1), len(tiers)) - 1].name
    score = score_of(raw_at_rank(rank_key(profile.raw, profile.t, h), at, h), rules["score_scale"])
    return tier_after_decay(stored, score, tiers)


def alert_chains(alerts: Iterable[tuple[int, int, bytes, Any]]) -> dict[str, list[dict[str, Any]]]:
    """Each candidate's alerts in the order published, deduplicated by id (first kept)."""
    seen: set[str] = set()
    chains: dict[str, list[dict[str, Any]]] = {}
    for _, _, _, alert in sorted(alerts, key=lambda r: (r[0], r[1])):
        if alert["id"] in seen:
            continue
        seen.add(alert["id"])
        chains.setdefault(alert["candidateId"], []).append(alert)
    return chains


def check_chain(chain: Sequence[Mapping[str, Any]], holds: set[str], floor: str) -> str | None:
    """(2) for one candidate: what is wrong with its alert chain, or None. ``holds``: the tiers
    it may hold now (one, or two when a threshold was crossed while the check read)."""
    announced = floor
    for k, alert in enumerate(chain):
        if alert["previousTier"] != announced:
            return (
                f"alert {k + 1} goes {alert['previousTier']} -> {alert['tier']}, after {announced}"
            )
        announced = alert["tier"]
    if announced not in holds:
        return (
            f"the last alert announced {announced}; the candidate holds {'/'.join(sorted(holds))}"
        )
    return None


def describe_chain(chain: Sequence[Mapping[str, Any]]) -> str:
    return (
        ", ".join(
            f"[seq {a['sequence']} {a['previousTier']}->{a['tier']} score {a['score']} "
            f"{a['cause'].get('type')}]"
            for a in chain
        )
        or "(no alert)"
    )


def check_changes(changes: Sequence[Mapping[str, Any]], history: Sequence[Step]) -> str | None:
    """(4) the changes topic follows the store: its record of the highest sequence is a state the
    candidate had (same score and raw as that step) at or after the last step that changed the
    integer score (a change record is written for each such step; a replay may re-publish the
    current state), and no later than the stored sequence."""
    last_change = max((s.sequence for s in history if s.changed), default=0)
    if not changes:
        return (
            None if last_change == 0 else f"no change record; the last change is seq {last_change}"
        )
    record = max(changes, key=lambda c: c["sequence"])
    seq = record["sequence"]
    if not last_change <= seq <= len(history):
        return (
            f"latest change record seq {seq} score {record['score']}; the last integer change "
            f"is seq {last_change} (score {history[last_change - 1].score if last_change else '-'}), "
            f"stored seq {len(history)} score {history[-1].score}"
        )
    step = history[seq - 1]
    if record["score"] != step.score or not close(record["raw"], step.raw):
        return f"record seq {seq} says {record['score']} raw {record['raw']}; that state was {step.score} raw {step.raw}"
    return None


def check_latest(record: Mapping[str, Any] | None, profile: Profile) -> str | None:
    """(4) the latest topic's last record of the candidate has the stored sequence and raw."""
    if record is None:
        return f"no record (stored seq {profile.sequence})"
    if record["sequence"] != profile.sequence or not close(record["raw"], profile.raw):
        return (
            f"last record seq {record['sequence']} raw {record['raw']}; "
            f"stored seq {profile.sequence} raw {profile.raw}"
        )
    return None
