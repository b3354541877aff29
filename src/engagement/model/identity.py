"""Identity merges: which merges of a batch may go ahead (pure; docs/scoring.md "Identity").

Every merged id points at the id it was folded into (``merged_into``), so the ids of one person
form a tree whose root is the candidate that holds the score. A merge folds its source into the
root of its target's tree. It is refused when that would close a loop (the source is on the
target's path: the two ids are already one candidate, held by the source) or would put the source
more redirects away from its candidate than events follow.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from typing import Literal, TypeVar

Id = TypeVar("Id", bound=Hashable)
Verdict = Literal["go", "cycle", "too_deep"]


def screen_merges(
    merges: Sequence[tuple[Id, Id]], links: Mapping[Id, Id | None], *, max_depth: int
) -> list[Verdict]:
    """The verdict of each merge ``(source, target)``, in batch order, as if applied one by one.

    ``links`` maps every source and every id on a target's path (up to ``max_depth`` links) to
    the id it was merged into (None: not merged); an id missing from it lies beyond that depth.
    A source already merged goes ahead: step 1 answers a replay or refuses another target
    itself, atomically. Each accepted merge becomes a link seen by the merges after it.
    """
    known = dict(links)
    verdicts: list[Verdict] = []
    for source, target in merges:
        if known.get(source) is not None:
            verdicts.append("go")
            continue
        verdict = _verdict(source, target, known, max_depth)
        if verdict == "go":
            known[source] = target
        verdicts.append(verdict)
    return verdicts


def _verdict(source: Id, target: Id, links: Mapping[Id, Id | None], max_depth: int) -> Verdict:
    node = target
    for _ in range(max_depth + 1):
        if node == source:
            return "cycle"
        if node not in links:
            return "too_deep"
        following = links[node]
        if following is None:
            return "go"
        node = following
    return "too_deep"


ANONYMOUS = "anon:"  # the start of the candidate id of a visitor not identified


def candidate_of_ids(user_id: str | None, anonymous_id: str | None) -> str:
    """The candidate an event scores: its userId, else ``anon:`` + its anonymousId. The one
    place this rule is written (the interactions key, the store's jobs and merges use it)."""
    if user_id:
        return user_id
    if anonymous_id:
        return f"{ANONYMOUS}{anonymous_id}"
    raise ValueError("an event needs a userId or an anonymousId")
