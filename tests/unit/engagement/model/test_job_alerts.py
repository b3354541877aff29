"""Job alert decisions (engagement.model.job_alerts): a (candidate, job) decided as a candidate is,
under the job tiers, and only the alert tier's crossings announced. Pure."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from engagement.model.alerts import NOTHING, Decayed, Notified, alert_id, decide_decay
from engagement.model.job_alerts import (
    fold_job_changes,
    job_alert_id,
    job_alerts,
    job_rules,
    sweep_deadline,
)
from engagement.model.records import Cause, JobChange, ScoreChange
from engagement.model.rules import Rules, TierRule
from engagement.model.scoring import crossing_time, rank_key

TIERS = (
    TierRule(name="cold", enter=1, exit=1),
    TierRule(name="warm", enter=40, exit=35),
    TierRule(name="hot", enter=70, exit=65),
)
RULES = Rules(version="t", half_life_days=1.0, score_scale=50.0, alert_tier="hot", tiers=TIERS)
T0 = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
DAY = 86400.0


def entry(
    seq: int, tier: str | None, previous: str | None, *, raw: float = 90.0, **kw
) -> JobChange:
    return JobChange(
        jobId=kw.get("job", "J-1"),
        candidateId=kw.get("candidate", "u1"),
        score=83 if tier == "hot" else 50 if tier == "warm" else 1,
        tier=tier,
        previousTier=previous,
        raw=raw,
        sequence=seq,
        asOf=kw.get("as_of", T0),
    )


def record(seq: int, *jobs: JobChange, cause: str | Cause = "event") -> ScoreChange:
    """A score record of u1 (cold) carrying ``jobs``; ``cause`` its type, or the cause itself."""
    return ScoreChange(
        tenantId="acme",
        candidateId="u1",
        score=30,
        tier="cold",
        raw=20.0,
        pillars={},
        channels={},
        sequence=seq,
        asOf=T0,
        rulesVersion="t",
        cause=cause
        if isinstance(cause, Cause)
        else Cause(messageId=f"m{seq}", event="Job Applied", type=cause),
        jobs=jobs,
    )


KEY = ("acme:u1", "J-1")


def test_a_job_entering_the_alert_tier_is_one_job_hot_with_the_records_cause():
    fold = fold_job_changes([record(3, entry(3, "hot", "warm"))], {}, RULES, T0)

    [alert] = fold.alerts
    assert (alert.type, alert.jobId, alert.tier, alert.previousTier) == (
        "candidate.job_hot",
        "J-1",
        "hot",
        "warm",
    )
    assert alert.cause == {"messageId": "m3", "event": "Job Applied", "type": "event"}
    assert alert.id == job_alert_id("acme", "u1", "J-1", 3, "hot")
    assert fold.states == {KEY: Notified("hot", 3)}


def test_a_replayed_entry_decides_nothing():
    known = {KEY: Notified("hot", 3)}

    fold = fold_job_changes([record(3, entry(3, "hot", "warm"))], known, RULES, T0)

    assert (fold.alerts, fold.states) == ((), {})


def test_a_re_published_jobs_current_state_is_announced_from_the_tier_known_for_the_job():
    # given the current state of J-1 a replay found (hot since sequence 5, no previous values),
    # on the candidate's re-published record of sequence 7
    current = entry(5, "hot", None)
    # when the notifier knew nothing of J-1, knew it warm at 4, or announced it hot at 5
    unknown = fold_job_changes([record(7, current)], {}, RULES, T0)
    warm = fold_job_changes([record(7, current)], {KEY: Notified("warm", 4)}, RULES, T0)
    seen = fold_job_changes([record(7, current)], {KEY: Notified("hot", 5)}, RULES, T0)
    # then the crossing is announced from the tier known (else the floor) with the job's sequence,
    # the id the lost record of sequence 5 would have given it; once announced, nothing again
    assert [(a.previousTier, a.id) for a in unknown.alerts + warm.alerts] == [
        ("cold", job_alert_id("acme", "u1", "J-1", 5, "hot")),
        ("warm", job_alert_id("acme", "u1", "J-1", 5, "hot")),
    ]
    assert (seen.alerts, seen.states) == ((), {})


def test_moves_outside_the_alert_tier_are_remembered_not_announced():
    fold = fold_job_changes([record(2, entry(2, "warm", "cold", raw=60.0))], {}, RULES, T0)

    assert fold.alerts == ()
    assert fold.states == {KEY: Notified("warm", 2)}


def test_a_record_read_after_its_job_cooled_announces_hot_then_the_decay():
    now = T0 + timedelta(days=1)  # one half-life: 83 -> about 59, below hot's exit

    fold = fold_job_changes([record(3, entry(3, "hot", "warm"))], {}, RULES, now)

    assert [(a.type, a.tier, a.cause["type"]) for a in fold.alerts] == [
        ("candidate.job_hot", "hot", "event"),
        ("candidate.job_cooled", "warm", "decay"),
    ]
    assert fold.states == {KEY: Notified("warm", 3)}


def test_a_candidate_leaving_a_hot_job_cools_for_it_with_cause_left():
    known = {KEY: Notified("hot", 3)}

    fold = fold_job_changes([record(4, entry(4, None, None), cause="merge")], known, RULES, T0)

    [alert] = fold.alerts
    assert (alert.type, alert.tier, alert.previousTier) == ("candidate.job_cooled", "cold", "hot")
    assert alert.cause == {
        "type": "left",
        "by": {"messageId": "m4", "event": "Job Applied", "type": "merge"},
    }


def test_an_erasure_forgets_the_candidates_job_states_decided_before_it():
    erasure = record(9, cause="erasure")
    changes = [record(3, entry(3, "hot", "warm")), erasure, record(10, entry(10, "warm", "cold"))]

    fold = fold_job_changes(changes, {KEY: Notified("warm", 2)}, RULES, T0)

    assert fold.erased == ("acme:u1",)
    assert fold.states == {KEY: Notified("warm", 10)}  # after the erasure, from the floor
    assert [a.sequence for a in fold.alerts] == [3]


def test_jobs_and_candidates_never_share_an_alert_id():
    assert job_alert_id("acme", "u1", "J-1", 3, "hot") != alert_id("acme", "u1", 3, "hot")


def test_job_tiers_of_a_template_decide_its_jobs():
    rules = RULES.model_copy(
        update={
            "job_tiers": (
                TierRule(name="cold", enter=1, exit=1),
                TierRule(name="hot", enter=50, exit=45),
            )
        }
    )
    jobs = job_rules(rules)

    fold = fold_job_changes([record(3, entry(3, "hot", "cold", raw=40.0))], {}, jobs, T0)

    assert [t.name for t in jobs.tiers] == ["cold", "hot"]
    assert [(a.type, a.thresholds) for a in fold.alerts] == [
        ("candidate.job_hot", {"cold": {"enter": 1, "exit": 1}, "hot": {"enter": 50, "exit": 45}})
    ]
    assert job_rules(rules) is jobs  # built once per template


def test_the_sweeps_finding_cools_a_hot_job_once():
    found = Decayed("acme", "u1", "hot", 3, 60, T0)

    decision = decide_decay(found, Notified("hot", 3), RULES, T0)
    assert decision.state is not None
    again = decide_decay(found, decision.state, RULES, T0)

    assert [(a.type, a.jobId, a.cause["type"]) for a in job_alerts(decision.alerts, "J-1")] == [
        ("candidate.job_cooled", "J-1", "decay")
    ]
    assert decision.state == Notified("warm", 3)
    assert again == NOTHING


@given(raw=st.floats(min_value=40.0, max_value=5000.0), hours=st.floats(0, 1000))
def test_the_sweep_deadline_is_when_the_job_falls_below_the_lowest_exit(raw, hours):
    as_of = T0 + timedelta(hours=hours)
    job = entry(1, "hot", "cold", raw=raw, as_of=as_of)

    deadline = sweep_deadline(job, RULES)

    expected = crossing_time(rank_key(raw, as_of.timestamp(), DAY), 35, 50.0, DAY)
    assert deadline == expected and deadline >= as_of.timestamp()


def test_a_job_at_the_floor_or_left_needs_no_sweep():
    assert sweep_deadline(entry(1, "cold", None, raw=1.0), RULES) is None
    assert sweep_deadline(entry(1, None, None), RULES) is None
