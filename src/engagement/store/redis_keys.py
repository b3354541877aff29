"""The Redis key layout (docs/design.md §5). Every key starts with the configured prefix (``P``).

Per candidate C of tenant T — hash tag ``{T:C}``, so one candidate's keys share a cluster slot and
every candidate script touches one slot only:

==================  =========  =================================================================
key                 type       content
==================  =========  =================================================================
``P{T:C}:p``        hash       profile: ``t`` reference time (= latest scored event time), ``r``
                               total R at ``t``, ``e``/``a``/``i`` entrance/activity/interaction
                               sums, ``c:<channel>`` channel sums, ``s`` sequence, ``g`` tier
                               (1-based index into the rules' tiers, hysteresis applied), ``v`` rules
                               version, ``m`` merged_into (anonymous ids). The last event time is
                               ``t``: only scored events move it, capped ones add nothing.
``P{T:C}:d``        zset       dedupe: messageId → receivedAt; trimmed to the dedupe window
                               (default 8 days) on every 16th scored write and every capped one,
                               so it holds the window plus at most 15 older ids
``P{T:C}:k``        hash       daily caps: ``<utc day number>|<event>`` → count (old days pruned)
``P{T:C}:c``        list       recent contributions, newest first, capped (default 6):
                               ``t␟points␟pillar␟channel␟event␟messageId`` (␟ = \\x1f)
``P{T:C}:m``        set        ids merged into C, directly or through a chain (erasure, merge
                               dedupe); an id erased on its own leaves it
``P{T:C}:j``        hash       C's job profiles: job id → ``t␟r␟e␟a␟i␟g␟s`` (reference time = its
                               latest event time, total, pillar sums, job tier 1-based, the
                               candidate's sequence of its last change); at most ``JOBS_KEPT``
``P{T:C}:jr``       zset       no longer written (C's job ranks until 2026-12-06: the weakest job
                               is now found from ``:j``); only erasure still deletes it
``P{T:C}:jl``       zset       jobs C left (dropped as its weakest) → C's sequence of the drop,
                               while C has no profile for them; the newest ``JOBS_KEPT``: a
                               replayed event re-publishes them (only candidates that dropped one)
``P{T:C}:e``        hash       pending erasure of C, only between ``DELETE`` wiping C's keys and
                               Kafka acknowledging its records: ``s`` C's last sequence,
                               ``i:<id>`` each id merged into C (to tombstone), ``o`` the
                               candidates C is merged into (JSON array: C erased on its own
                               leaves their merged-ids sets); expires (7 days)
==================  =========  =================================================================

Per tenant T — hash tag ``{T}``; the rank script touches only these keys:

==================  =========  =================================================================
``P{T}:tier:<name>`` zset      candidates whose *stored* tier is ``<name>``: member = candidate
                               id, score = rank key ``log2(R_ref) + t_ref/h`` (-inf if R <= 0)
``P{T}:seq``        hash       candidate → sequence of the state in the tier sets (compare-and-set:
                               stale or replayed rank updates never win; merged ids keep theirs)
``P{T}:jobtier:<tier>:<J>`` zset  candidates of job J whose stored job tier is ``<tier>`` (rank key)
``P{T}:jobseq:<J>``  hash      candidate → sequence of its state in job J's tier sets
``P{T}:jobs``       zset       the tenant's jobs → the latest event time of a state written to
                               their tier sets (``GET /v1/jobs``: most recently engaged first);
                               a job no candidate is left in and no event named for the anonymous
                               retention is pruned, with its ``jobseq`` (``services.scorer.expiry``)
``P{T}:anon``       zset       anonymous candidates not merged into anyone → their latest event
                               time: who is idle past the retention (``services.scorer.expiry``)
==================  =========  =================================================================

The notifier's (``services.notifier``): ``P{T:C}:notified`` (hash: the tier it announced, its
level and sequence), ``P{T:C}:notified:jobs`` (hash: the same per job), ``P{T}:sweepjobs`` (zset:
the jobs its sweep looks at), ``P{notifier}:sweep:lock`` / ``:watermark`` / ``:job-watermark``
(its decay sweep), and the keys
of its webhook delivery queue, starting ``P{webhooks}:``.

The scorer's: ``P{expiry}:lock`` (one scorer requests expiries at a time).

Global: ``Ptenants`` (set of tenant ids) and ``Perasing`` (hash: the erasure fences,
``engagement.store.erasure_fence``: a digest of ``T`` and ``C`` → the request's ``requestedAt``, from
``DELETE`` until an hour after the scorer reached C's erasure request; no id in it; field ``#``:
its change token, set anew by every write).

Reading the tier sets (h = half-life, ``bound(s, t) = rank_bound(s, t, scale, h)``):

- current score of a member at ``now``: ``score_of(2^(rank - now/h))``;
- current tier of a member of tier k's set: the highest j <= k with rank >= bound(exit_j, now)
  (decay only moves down), so ``tier_counts`` is a handful of ZCOUNTs;
- members of tier k's set that decayed below ``exit_j`` (j <= k) between instants t0 < t1:
  ``ZRANGE P{T}:tier:<k> [bound(exit_j, t0) (bound(exit_j, t1) BYSCORE`` (bounds grow with time)
  — the notifier's sweep.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class CandidateKeys:
    """The keys of one candidate (one cluster slot)."""

    profile: str
    dedupe: str
    caps: str
    contributions: str
    merged: str
    jobs: str
    jobs_left: str
    job_ranks_before: str  # written by earlier versions only: erased with the candidate

    @property
    def all(self) -> tuple[str, ...]:
        """Every key, in the order the erase script expects."""
        return (
            self.profile,
            self.dedupe,
            self.caps,
            self.contributions,
            self.merged,
            self.jobs,
            self.jobs_left,
            self.job_ranks_before,
        )


@dataclass(frozen=True)
class KeyLayout:
    """Builds every key name from the configured prefix."""

    prefix: str = "eng:"

    def candidate(self, tenant_id: str, candidate_id: str) -> CandidateKeys:
        """The keys of one candidate, hash-tagged ``{tenant:candidate}``."""
        base = self.candidate_base(tenant_id, candidate_id)
        return CandidateKeys(
            profile=f"{base}:p",
            dedupe=f"{base}:d",
            caps=f"{base}:k",
            contributions=f"{base}:c",
            merged=f"{base}:m",
            jobs=f"{base}:j",
            jobs_left=f"{base}:jl",
            job_ranks_before=f"{base}:jr",
        )

    def candidate_base(self, tenant_id: str, candidate_id: str) -> str:
        """The common start of a candidate's keys (each key adds ``:<letter>``)."""
        return f"{self.prefix}{{{tenant_id}:{candidate_id}}}"

    def pending_erasure(self, tenant_id: str, candidate_id: str) -> str:
        """The hash recording an erasure of the candidate until Kafka acknowledged its records."""
        return f"{self.candidate_base(tenant_id, candidate_id)}:e"

    def tier_set(self, tenant_id: str, tier: str) -> str:
        """The sorted set of candidates whose stored tier is ``tier``."""
        return f"{self.prefix}{{{tenant_id}}}:tier:{tier}"

    def sequences(self, tenant_id: str) -> str:
        """The tenant's candidate → sequence hash (rank compare-and-set)."""
        return f"{self.prefix}{{{tenant_id}}}:seq"

    def job_tier_set(self, tenant_id: str, job_id: str, tier: str) -> str:
        """The sorted set of job ``job_id``'s candidates whose stored job tier is ``tier``."""
        return f"{self.prefix}{{{tenant_id}}}:jobtier:{tier}:{job_id}"

    def job_sequences(self, tenant_id: str, job_id: str) -> str:
        """Job ``job_id``'s candidate → sequence hash (its tier sets' compare-and-set)."""
        return f"{self.prefix}{{{tenant_id}}}:jobseq:{job_id}"

    def jobs(self, tenant_id: str) -> str:
        """The tenant's jobs by the latest event time naming each (``GET /v1/jobs``)."""
        return f"{self.prefix}{{{tenant_id}}}:jobs"

    def anonymous(self, tenant_id: str) -> str:
        """The tenant's anonymous candidates by latest event time (expiry of idle ones)."""
        return f"{self.prefix}{{{tenant_id}}}:anon"

    def quiet(self, tenant_id: str) -> str:
        """The tenant's candidates moved on without a score record (``engagement.store.quiet``)."""
        return f"{self.prefix}{{{tenant_id}}}:quiet"

    @property
    def expiry_lock(self) -> str:
        """The lock one scorer holds while it requests the expiry of idle anonymous candidates."""
        return f"{self.prefix}{{expiry}}:lock"

    @property
    def erasing(self) -> str:
        """The hash of erasure fences (ids being erased: their events in flight are withheld)."""
        return f"{self.prefix}erasing"

    @property
    def tenants(self) -> str:
        """The set of tenant ids with scored candidates."""
        return f"{self.prefix}tenants"

    # the notifier's state (services.notifier.state, services.notifier.delivery_queue)

    def notified(self, candidate_key: str) -> str:
        """The tier the notifier announced for ``tenant:candidate`` (its candidate's slot)."""
        return f"{self.prefix}{{{candidate_key}}}:notified"

    def notified_jobs(self, candidate_key: str) -> str:
        """The job tiers the notifier announced for ``tenant:candidate``, per job (its slot)."""
        return f"{self.prefix}{{{candidate_key}}}:notified:jobs"

    def sweep_jobs(self, tenant_id: str) -> str:
        """The tenant's jobs the notifier's decay sweep looks at (``services.notifier.job_state``)."""
        return f"{self.prefix}{{{tenant_id}}}:sweepjobs"

    def notifier_sweep(self, name: str) -> str:
        """The notifier's decay sweep ``lock`` and ``watermark``."""
        return f"{self.prefix}{{notifier}}:sweep:{name}"

    @property
    def webhooks(self) -> str:
        """The start of every key of the notifier's webhook delivery queue (one slot)."""
        return f"{self.prefix}{{webhooks}}:"


def glob_literal(text: str) -> str:
    """``text`` as a SCAN pattern matching only itself (glob characters escaped)."""
    return "".join(f"\\{ch}" if ch in "*?[]\\" else ch for ch in text)
