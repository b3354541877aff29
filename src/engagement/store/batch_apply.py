"""``ScoreStore.apply_batch``: a batch in pipelined rounds (``transaction=False``).

(1) every apply script and merge step 1, written in chunks as the jobs are planned, (2) redirects
of merged anonymous ids and merge step 2, (3) the rank round (``engagement.store.rank_round``):
rank updates with sequence compare-and-set, the anonymous index and the quiet index. Every step is idempotent, so
replaying a batch (after a crash) changes nothing. A batch with merges first reads the
``merged_into`` links on their targets' paths (one round trip per link followed) and refuses the
merges that would close a loop. One interaction's job and its outcome: ``engagement.store.store_jobs``;
the merge screening and refusals: ``engagement.store.merge_store``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator
from dataclasses import replace
from typing import Any

import orjson
from redis.commands.core import AsyncScript

from engagement.model.jobs import JobState
from engagement.model.log_privacy import hashed_id
from engagement.model.records import Interaction
from engagement.model.rules import Rules
from engagement.model.score_views import ApplyOutcome, Outcome, parse_replies
from engagement.store import job_store as jobs
from engagement.store import merge_store
from engagement.store.connection import RedisClient
from engagement.store.merge_store import MAX_HOPS, Link
from engagement.store.rank_round import RankRound
from engagement.store.redis_keys import KeyLayout
from engagement.store.store_jobs import MERGE_TYPES, Job, OnOutcome, outcome_of, plan, unscored
from engagement.store.store_scripts import Command, event_args, run_pipelined, text

log = logging.getLogger("engagement.store")


class BatchApply(RankRound):
    """The apply path of ``engagement.store.redis_store.ScoreStore``, which sets these."""

    redis: RedisClient
    keys: KeyLayout
    rules: Rules
    log_key: bytes
    _scripts: dict[str, AsyncScript]
    _sources: dict[str, str]
    _window: str

    async def apply_batch(
        self,
        interactions: Iterable[Interaction],
        *,
        on_outcome: OnOutcome | None = None,
        while_ranking: Callable[[list[ApplyOutcome]], None] | None = None,
    ) -> list[ApplyOutcome]:
        """Apply a batch; one outcome per interaction, in order. Idempotent per messageId.

        ``interactions`` may be lazy (records parsed as they are taken): the first round takes
        them as it sends their commands, so Redis runs the first while the rest are parsed and
        planned. From the first identify/alias on, the rest of the batch is taken at once: its
        merges are screened before they are sent.

        Two hooks let the caller work while Redis does (nothing here waits for them to be
        useful): ``on_outcome(index, outcome)`` is called once per interaction as soon as its
        outcome is known, most of them while Redis still runs the rest of the batch, and
        ``while_ranking(outcomes)`` once every outcome is known, while Redis updates the ranks.
        """
        taken: list[Interaction] = []
        outcomes: list[ApplyOutcome | None] = []
        source = iter(interactions)
        merge_from: list[int] = []  # where the first identify/alias is, once taken

        def until_merge() -> Iterator[tuple[int, Interaction]]:
            for interaction in source:
                taken.append(interaction)
                outcomes.append(None)
                if interaction.type in MERGE_TYPES:
                    merge_from.append(len(taken) - 1)
                    return
                yield len(taken) - 1, interaction

        await self._rounds(self._jobs(until_merge(), outcomes, on_outcome), outcomes, on_outcome)
        if merge_from:
            for interaction in source:
                taken.append(interaction)
                outcomes.append(None)
            rest = ((k, taken[k]) for k in range(merge_from[0], len(taken)))
            follow = await self._screen(
                list(self._jobs(rest, outcomes, on_outcome)), outcomes, on_outcome
            )
            await self._rounds(follow, outcomes, on_outcome)
        done = self._settled(taken, outcomes, on_outcome)
        await self._update_ranks(
            done, None if while_ranking is None else lambda: while_ranking(done)
        )
        return done

    async def _rounds(
        self, jobs: Iterable[Job], outcomes: list[ApplyOutcome | None], on_outcome: OnOutcome | None
    ) -> None:
        """Run rounds until no job follows (a job follows its merge redirect)."""
        follow = await self._round(jobs, outcomes, on_outcome)
        while follow:
            follow = await self._round(follow, outcomes, on_outcome)

    def _settled(
        self,
        taken: list[Interaction],
        outcomes: list[ApplyOutcome | None],
        on_outcome: OnOutcome | None,
    ) -> list[ApplyOutcome]:
        done: list[ApplyOutcome] = []
        for index, outcome in enumerate(outcomes):
            if outcome is None:  # defensive: every job settles with an outcome
                outcome = unscored(taken[index], self.rules.version)
                if on_outcome is not None:
                    on_outcome(index, outcome)
            done.append(outcome)
        return done

    def _jobs(
        self,
        interactions: Iterable[tuple[int, Interaction]],
        outcomes: list[ApplyOutcome | None],
        on_outcome: OnOutcome | None,
    ) -> Iterator[Job]:
        """The jobs of (index, interaction)s, in order; one with nothing to score settles here."""
        rules = self.rules
        for index, interaction in interactions:
            job = plan(index, interaction, rules)
            if job is not None:
                yield job
                continue
            outcome = outcomes[index] = unscored(interaction, rules.version)
            if on_outcome is not None:
                on_outcome(index, outcome)

    async def _screen(
        self, jobs: list[Job], outcomes: list[ApplyOutcome | None], on_outcome: OnOutcome | None
    ) -> list[Job]:
        """The jobs that go ahead: a batch's merges are screened first (``merge_store.screen``)."""
        merges = [job for job in jobs if job.stage == "take"]
        if not merges:
            return jobs
        links = await self._merge_links(merges)
        return merge_store.screen(
            jobs, links, outcomes, rules=self.rules, on_outcome=on_outcome, log_key=self.log_key
        )

    async def _merge_links(self, merges: list[Job]) -> dict[Link, Link | None]:
        """``merged_into`` links on the paths of ``merges`` (``merge_store.path_links``)."""
        return await merge_store.path_links(self.redis, self.keys, self._sources, merges)

    async def _round(
        self,
        jobs: Iterable[Job],
        outcomes: list[ApplyOutcome | None],
        on_outcome: OnOutcome | None,
    ) -> list[Job]:
        sent: list[Job] = []
        follow: list[Job] = []

        def commands() -> Iterator[Command]:  # taken lazily, chunk by chunk, as they are sent
            for job in jobs:
                sent.append(job)
                yield self._command(job)

        def settle(k: int, result: Any) -> None:  # as each reply arrives, while Redis goes on
            job = sent[k]
            follow.extend(self._settle(job, result, outcomes))
            outcome = outcomes[job.index]
            if on_outcome is not None and outcome is not None:
                on_outcome(job.index, outcome)

        await run_pipelined(self.redis, commands(), self._sources, on_reply=settle)
        return follow

    def _command(self, job: Job) -> Command:
        if job.event is not None:
            base = self.keys.candidate_base(job.tenant, job.candidate)
            keys = (f"{base}:p", f"{base}:d", f"{base}:k", f"{base}:c")
            if job.job_id is not None:  # the apply that also scores into the job's profile
                sha = self._scripts["apply_job"].sha
                args = (*event_args(job.event, self._window), job.job_id)
                jobs = (f"{base}:j", f"{base}:jl")
                return ("EVALSHA", sha, 6, *keys, *jobs, *args)
            sha = self._scripts["apply"].sha
            return ("EVALSHA", sha, 4, *keys, *event_args(job.event, self._window))
        src = self.keys.candidate(job.tenant, job.source or "")
        if job.stage == "take":
            take = (src.profile, src.caps, src.contributions, src.merged, src.jobs)
            return ("EVALSHA", self._scripts["merge_take"].sha, 5, *take, job.candidate)
        if job.stage == "release":
            target = job.interaction.userId or ""
            return ("EVALSHA", self._scripts["merge_release"].sha, 1, src.profile, target)
        dst = self.keys.candidate(job.tenant, job.candidate)
        add = (dst.profile, dst.merged, dst.caps, dst.contributions, dst.jobs, dst.jobs_left)
        sha = self._scripts["merge_add"].sha
        return ("EVALSHA", sha, 6, *add, *job.frozen)

    def _settle(
        self, job: Job, result: list[Any], outcomes: list[ApplyOutcome | None]
    ) -> list[Job]:
        kind = text(result[0])
        if kind == "redirect":
            return self._redirect(job, text(result[1]), outcomes)
        if job.stage == "take":
            return merge_store.after_take(
                job, kind, result, outcomes, rules=self.rules, log_key=self.log_key
            )
        if job.stage == "release":
            return merge_store.released(
                job, result, outcomes, rules=self.rules, log_key=self.log_key
            )
        job_states: tuple[JobState, ...] = ()
        if len(result) > 3 or job.source_jobs:  # a change of (candidate, job) profiles
            job_states = jobs.states_of(self, job, kind, result)
            result = result[:3]
        before, after = parse_replies(kind, result, self.rules)
        outcome: Outcome = kind  # type: ignore[assignment]
        outcomes[job.index] = outcome_of(
            job, outcome, before, after, self.rules.version, jobs=job_states
        )
        return []

    def _redirect(self, job: Job, target: str, outcomes: list[ApplyOutcome | None]) -> list[Job]:
        if job.stage == "add" and (target == job.source or job.hops >= MAX_HOPS):
            return merge_store.refuse_add(
                job, target, outcomes, rules=self.rules, log_key=self.log_key
            )
        if job.hops >= MAX_HOPS:
            outcomes[job.index] = outcome_of(job, "conflict", None, None, self.rules.version)
            fields: dict[str, Any] = {"event": "store.redirect_conflict", "tenant": job.tenant}
            candidate = hashed_id(job.redirected_from or job.candidate, key=self.log_key)
            fields |= {"candidate": candidate, "messageId": job.interaction.messageId}
            log.warning("event not scored: %s", orjson.dumps(fields).decode(), extra=fields)
            return []
        redirected = job.redirected_from or job.candidate
        return [replace(job, candidate=target, redirected_from=redirected, hops=job.hops + 1)]
