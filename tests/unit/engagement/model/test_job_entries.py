"""Job entries decided as candidates (engagement.model.job_alerts): an entry's own instant, a
candidate leaving a job, every job's decay to now, stable job alert ids, the job rules. Pure."""

from __future__ import annotations

from datetime import datetime, timedelta

from engagement.model.alerts import Notified
from engagement.model.job_alerts import fold_job_changes, job_alert_id, job_rules, sweep_deadline
from engagement.model.records import Cause, JobChange
from tests.unit.engagement.model.test_job_alerts import RULES, T0, TIERS, record

DAY = timedelta(days=1)  # the half-life


def entry(seq: int, tier: str, *, raw: float, job: str = "J-1", as_of: datetime = T0) -> JobChange:
    return JobChange(
        jobId=job, candidateId="u1", score=50, tier=tier, raw=raw, sequence=seq, asOf=as_of
    )


def left(seq: int) -> JobChange:
    """An entry of a candidate that left the job, as the scorer writes it (a removed state)."""
    return JobChange(jobId="J-1", candidateId="u1", score=1, tier=None, raw=0.0, sequence=seq)


def test_job_alert_ids_stay_the_same_across_releases() -> None:
    # receivers dedupe on them: a release that changed them would make replayed alerts look new
    assert job_alert_id("acme", "u1", "J-1", 3, "hot") == "alrt_521b0f0da909e84543205ecb5b76b891"


def test_an_entry_decays_from_its_own_instant_not_the_records() -> None:
    # given a record at T0 carrying J-1's profile as of a half-life earlier (raw 90: hot; raw 45
    # at T0, score 59: below hot's exit)
    earlier = entry(3, "hot", raw=90.0, as_of=T0 - DAY)
    # when it is folded at T0
    fold = fold_job_changes([record(3, earlier)], {}, RULES, T0)
    # then J-1 was hot at its own instant and has cooled by now
    assert [(a.type, a.time) for a in fold.alerts] == [
        ("candidate.job_hot", T0 - DAY),
        ("candidate.job_cooled", T0),
    ]


def test_a_candidate_leaving_a_hot_job_cools_it_to_the_floor_at_the_records_instant() -> None:
    # given J-1 announced hot, and a merge record whose entry says the candidate left it
    merge = record(4, left(4), cause=Cause(type="merge"))
    # when it is folded
    fold = fold_job_changes([merge], {("acme:u1", "J-1"): Notified("hot", 3)}, RULES, T0 + DAY)
    # then J-1 cools to the floor (score 1) at the record's instant, left by the merge
    [alert] = fold.alerts
    assert (alert.tier, alert.score, alert.time) == ("cold", 1, T0)
    assert alert.cause == {"type": "left", "by": {"type": "merge"}}


def test_every_job_of_a_batch_has_its_decay_to_now_decided() -> None:
    # given J-1 warm and holding (raw 60 -> 30 in a half-life: score 45), J-2 hot and cooling
    holding = entry(2, "warm", raw=60.0)
    cooling = entry(2, "hot", raw=90.0, job="J-2")
    # when the batch is folded a half-life later
    fold = fold_job_changes([record(2, holding, cooling)], {}, RULES, T0 + DAY)
    # then J-2's cooling is announced, after J-1 was found holding
    assert [(a.jobId, a.type) for a in fold.alerts][-1] == ("J-2", "candidate.job_cooled")


def test_the_job_rules_are_their_own_job_rules() -> None:
    rules = RULES.model_copy(update={"job_tiers": (TIERS[0], TIERS[2])})
    jobs = job_rules(rules)
    assert jobs.job_tiers is None and job_rules(jobs) is jobs


def test_an_entry_without_its_profiles_instant_needs_no_sweep() -> None:
    undated = JobChange(jobId="J-1", candidateId="u1", score=83, tier="hot", raw=90.0, sequence=1)
    assert sweep_deadline(undated, RULES) is None
