"""Identity merges in the score store: screening a batch's merges and refusing the bad ones.

A merge (identify / alias) runs as jobs of ``ScoreStore.apply_batch``: step 1 (``merge_take``)
marks the source and hands over its sums, step 2 (``merge_add``) adds them to the target's
candidate. Before step 1, ``path_links`` reads the ``merged_into`` links on every merge's path and
``screen`` settles the merges that would close a loop or a too long chain as conflicts, decided
by ``engagement.model.identity`` (pure). A merge racing on another worker can still meet a loop in
step 2: ``refuse_add`` then undoes step 1 (``merge_release``, settled by ``released``). Every
refusal is logged (docs/scoring.md "Identity").
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

import orjson

from engagement.model.identity import screen_merges
from engagement.model.log_privacy import hashed_id
from engagement.model.rules import Rules
from engagement.model.score_views import ApplyOutcome, parse_snapshot
from engagement.store.connection import RedisClient
from engagement.store.redis_keys import KeyLayout
from engagement.store.store_jobs import Job, OnOutcome, outcome_of
from engagement.store.store_scripts import frozen_args, run_pipelined, text

MAX_HOPS = 3  # redirects an event follows from a merged id to its candidate
Link = tuple[str, str]  # (tenant, candidate)
REFUSALS = {
    "cycle": "the target already resolves to the source: they are one candidate, held by the source",
    "too_deep": f"the source would be more than {MAX_HOPS} redirects away from its candidate",
    "merged_elsewhere": "the source was already folded into another candidate",
}

log = logging.getLogger("engagement.store")


async def path_links(
    redis: RedisClient, keys: KeyLayout, sources: dict[str, str], merges: Sequence[Job]
) -> dict[Link, Link | None]:
    """``merged_into`` of every merge's source and of the ids on its target's path, up to
    MAX_HOPS - 1 links from the target (one pipelined round trip per link followed)."""
    links: dict[Link, Link | None] = {}
    path = {(job.tenant, job.candidate) for job in merges}
    ask = path | {(job.tenant, job.source or "") for job in merges}
    for _ in range(MAX_HOPS):
        missing = sorted(ask - links.keys())
        profiles = [("HGET", keys.candidate(*link).profile, "m") for link in missing]
        replies = await run_pipelined(redis, profiles, sources) if missing else []
        for (tenant, candidate), reply in zip(missing, replies, strict=True):
            links[(tenant, candidate)] = None if reply is None else (tenant, text(reply))
        ask = path = {nxt for node in path if (nxt := links[node]) is not None}
    return links


def screen(
    jobs: list[Job],
    links: Mapping[Link, Link | None],
    outcomes: list[ApplyOutcome | None],
    *,
    rules: Rules,
    on_outcome: OnOutcome | None,
    log_key: bytes,
) -> list[Job]:
    """The jobs that go ahead: merges that would close a loop or a too long chain settle as
    conflicts before anything is written (decided in batch order, as if one by one).
    ``links``: ``path_links`` of the batch's merges."""
    merges = [job for job in jobs if job.stage == "take"]
    pairs = [((job.tenant, job.source or ""), (job.tenant, job.candidate)) for job in merges]
    verdicts = screen_merges(pairs, links, max_depth=MAX_HOPS - 1)
    refused: set[int] = set()
    for job, verdict in zip(merges, verdicts, strict=True):
        if verdict != "go":
            refused.add(job.index)
            refuse(job, verdict, outcomes, rules=rules, log_key=log_key, at="screen")
            if on_outcome is not None:
                on_outcome(job.index, outcomes[job.index])  # type: ignore[arg-type]
    return [job for job in jobs if job.index not in refused]


def after_take(
    job: Job,
    kind: str,
    result: list[Any],
    outcomes: list[ApplyOutcome | None],
    *,
    rules: Rules,
    log_key: bytes,
) -> list[Job]:
    """The job of step 2 once step 1 replied ``kind`` (none if the source was merged elsewhere)."""
    if kind == "conflict":
        return refuse(
            job,
            "merged_elsewhere",
            outcomes,
            rules=rules,
            log_key=log_key,
            snapshot=result[1],
            at="merge_take",
        )
    frozen = frozen_args(job.source or "", result)
    source_state = parse_snapshot(result[1], rules)
    marked = kind == "taken"
    source_jobs = tuple(text(j) for j in result[5][::2]) if len(result) > 5 else ()
    step2 = replace(job, stage="add", frozen=frozen, source_state=source_state, marked=marked)
    return [replace(step2, source_jobs=source_jobs)]


def refuse_add(
    job: Job, target: str, outcomes: list[ApplyOutcome | None], *, rules: Rules, log_key: bytes
) -> list[Job]:
    """Step 2 met a loop or a too long chain at ``target`` (only a merge racing on another worker,
    or a chain grown since ``screen``, gets there): release the source if this merge marked it,
    else settle as a conflict."""
    refusal = "cycle" if target == job.source else "too_deep"
    if job.marked:  # nothing of the source was added anywhere: undo step 1
        return [replace(job, stage="release", refusal=refusal)]
    return refuse(job, refusal, outcomes, rules=rules, log_key=log_key, at="merge_add")


def released(
    job: Job,
    result: list[Any],
    outcomes: list[ApplyOutcome | None],
    *,
    rules: Rules,
    log_key: bytes,
) -> list[Job]:
    """Settle a merge whose step 1 ``refuse_add`` undid (``result``: merge_release's reply)."""
    refusal = job.refusal or "cycle"
    snapshot = result[1]
    return refuse(
        job, refusal, outcomes, rules=rules, log_key=log_key, snapshot=snapshot, at="merge_release"
    )


def refuse(
    job: Job,
    refusal: str,
    outcomes: list[ApplyOutcome | None],
    *,
    rules: Rules,
    log_key: bytes,
    snapshot: Any = None,
    at: str = "screen",
) -> list[Job]:
    """Settle a merge as a conflict (nothing of the source moved); log why and where, naming
    the ids by their keyed hash (``log_key``; they may be erased later).

    ``snapshot``: the source's state as the script that refused it replied it, if one did.
    """
    target = job.interaction.userId or ""
    state = None if snapshot is None else parse_snapshot(snapshot, rules)
    job = replace(job, candidate=target, source_state=None)
    outcomes[job.index] = outcome_of(job, "conflict", None, None, rules.version, state)
    fields: dict[str, Any] = {"event": "store.merge_refused", "reason": refusal}
    source = None if job.source is None else hashed_id(job.source, key=log_key)
    fields |= {"why": REFUSALS[refusal], "tenant": job.tenant, "source": source}
    fields |= {"target": hashed_id(target, key=log_key), "messageId": job.interaction.messageId}
    fields["at"] = at
    log.warning("identity merge refused: %s", orjson.dumps(fields).decode(), extra=fields)
    return []
