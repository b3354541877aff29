"""Score records built from store outcomes (services.scorer.score_changes): exact bytes on the wire."""

from __future__ import annotations

from types import MappingProxyType
from typing import Any

import orjson

from engagement.kafka.score_records import OutRecord, record
from engagement.model.jobs import JobState
from engagement.model.records import JobChange, ScoreChange
from engagement.model.score_views import ApplyOutcome, Previous, Snapshot, previous
from services.scorer.score_changes import score_records

AS_OF = 1795638516.341882  # 2026-11-25T20:28:36.341882Z
VALUE = (
    b'{"tenantId":"acme","candidateId":"u1","score":9,"previousScore":8,"tier":"warm",'
    b'"previousTier":"cold","raw":4.5,"pillars":{"entrance":0.5,"activity":4.0,"interaction":0.0},'
    b'"channels":{"web":4.5},"sequence":3,"asOf":"2026-11-25T20:28:36.341882Z",'
    b'"rulesVersion":"2026-11","cause":{"messageId":"m7","event":"Job Viewed","type":"event"}}'
)


def snapshot(sequence: int, score: int, tier: str, *, as_of: float = AS_OF, **kw: Any) -> Snapshot:
    return Snapshot(
        as_of=as_of,
        raw=kw.get("raw", 4.5),
        pillars=kw.get("pillars", {"entrance": 0.5, "activity": 4.0, "interaction": 0.0}),
        channels=kw.get("channels", {"web": 4.5}),
        sequence=sequence,
        score=score,
        tier=tier,
        rules_version="2026-11",
    )


def scored(
    sequence: int = 3, *, candidate: str = "u1", as_of: float = AS_OF, **kw: Any
) -> ApplyOutcome:
    outcome = kw.pop("outcome", "scored")
    merged_from = kw.pop("merged_from", None)
    after = snapshot(sequence, 9, "warm", as_of=as_of, **kw)
    before = Previous(sequence - 1, 8, "cold")
    return ApplyOutcome(
        outcome,
        "acme",
        candidate,
        f"m{sequence + 4}",
        "Job Viewed",
        "2026-11",
        before=previous(after) if outcome == "duplicate" else before,  # a duplicate changes nothing
        after=after,
        merged_from=merged_from,
    )


def records(*outcomes: ApplyOutcome) -> list[OutRecord]:
    return list(
        score_records(
            outcomes, changes_topic="changes", latest_topic="latest", floor_of=lambda _: "cold"
        )
    )


def headers(ce_id: bytes, kind: bytes, ce_time: bytes) -> list[tuple[str, bytes]]:
    return [
        ("ce_specversion", b"1.0"),
        ("ce_id", ce_id),
        ("ce_source", b"/engagement/scorer"),
        ("ce_type", b"org.candidate-engagement." + kind + b".v1"),
        ("ce_time", ce_time),
        ("ce_subject", b"acme:u1"),
        ("ce_sequence", b"3"),
        ("content-type", b"application/json"),
    ]


def test_a_score_change_yields_a_change_record_then_a_snapshot_with_exact_bytes():
    changed, latest = records(scored())

    assert changed == OutRecord(
        "changes",
        b"acme:u1",
        VALUE,
        headers(b"acme:u1:3", b"score.changed", b"2026-11-25T20:28:36.341Z"),
    )
    assert latest == OutRecord(
        "latest",
        b"acme:u1",
        VALUE,
        headers(b"latest:acme:u1:3", b"score.latest", b"2026-11-25T20:28:36.341Z"),
    )


def test_a_whole_second_renders_without_fraction_in_the_value_and_as_000_in_ce_time():
    changed, _ = records(scored(as_of=1795638516.0))

    assert b'"asOf":"2026-11-25T20:28:36Z"' in (changed.value or b"")
    assert dict(changed.headers)["ce_time"] == b"2026-11-25T20:28:36.000Z"


def test_the_value_is_a_score_change_with_its_fields_in_model_order():
    changed, _ = records(scored())

    value = orjson.loads(changed.value or b"")
    assert list(value) == [name for name in ScoreChange.model_fields if name != "jobs"]
    assert ScoreChange.model_validate(value).sequence == 3


def test_records_match_what_the_read_api_encodes_for_the_same_state():
    changed, latest = records(scored())
    change = ScoreChange.model_validate_json(changed.value or b"")

    for out, kind in ((changed, "score.changed"), (latest, "score.latest")):
        expected = record(out.topic, change, kind)
        assert (out.key, out.headers) == (expected.key, expected.headers)
        assert orjson.loads(out.value or b"") == orjson.loads(expected.value or b"")


def test_pillars_and_channels_of_any_mapping_encode_as_plain_dicts():
    pillars = MappingProxyType({"entrance": 0.5, "activity": 4.0, "interaction": 0.0})
    outcome = scored(pillars=pillars, channels=MappingProxyType({"web": 4.5}))

    assert [r.value for r in records(outcome)] == [VALUE, VALUE]


def test_a_replayed_duplicate_republishes_the_current_state_without_previous_values():
    duplicate = scored(outcome="duplicate")

    changed, latest = records(duplicate)

    value = orjson.loads(changed.value or b"")
    assert (value["previousScore"], value["previousTier"]) == (None, None)
    assert dict(changed.headers)["ce_id"] == b"acme:u1:3"
    assert dict(latest.headers)["ce_id"] == b"latest:acme:u1:3"


def test_a_replay_followed_by_events_that_change_no_integer_score_republishes_the_newest_state():
    # given a batch replayed after a crash: the first events of it were applied (duplicates now,
    # their change records perhaps never published), the last ones not (scored now, but leaving
    # the integer score as it was: no change record of their own)
    duplicate = scored(12, outcome="duplicate")
    unchanged = [
        ApplyOutcome(
            "scored",
            "acme",
            "u1",
            f"m{seq}",
            "Job Viewed",
            "2026-11",
            before=Previous(seq - 1, 9, "warm"),
            after=snapshot(seq, 9, "warm"),
        )
        for seq in (13, 14)
    ]
    # when its records are built
    changes = [r for r in records(duplicate, *unchanged) if r.topic == "changes"]
    # then the newest state is on the changes topic, as a re-published record
    [republished] = changes
    assert dict(republished.headers)["ce_id"] == b"acme:u1:14"
    assert orjson.loads(republished.value or b"")["previousScore"] is None


def test_a_new_candidates_first_change_has_no_previous_values():
    first = scored(1)._replace(before=Previous(0, 1, "cold"))

    changed, latest = records(first)

    value = orjson.loads(changed.value or b"")
    assert (value["score"], value["previousScore"], value["previousTier"]) == (9, None, None)
    assert (value["tier"], value["sequence"]) == ("warm", 1)
    assert changed.topic == "changes" and latest.topic == "latest"


def test_snapshots_are_coalesced_to_the_highest_sequence_of_the_batch():
    out = records(scored(3), scored(4))

    assert [(r.topic, dict(r.headers)["ce_sequence"]) for r in out] == [
        ("changes", b"3"),
        ("changes", b"4"),
        ("latest", b"4"),
    ]


def test_a_folded_anonymous_profile_gets_a_tombstone_on_the_latest_topic():
    merge = scored(outcome="merged", merged_from="anon-1")

    tombstone = records(merge)[-1]

    assert tombstone == OutRecord("latest", b"acme:anon-1", None, [])


MERGED_AWAY = (
    b'{"tenantId":"acme","candidateId":"anon:v1","score":1,"previousScore":null,"tier":"cold",'
    b'"previousTier":null,"raw":0.0,"pillars":{"entrance":0.0,"activity":0.0,"interaction":0.0},'
    b'"channels":{},"sequence":5,"asOf":"2026-11-25T20:28:36.341882Z","rulesVersion":"2026-11",'
    b'"cause":{"messageId":"m7","event":"Job Viewed","type":"merge","mergedInto":"u1"}}'
)


def test_a_merges_source_gets_one_record_of_its_state_after_the_merge_also_on_a_replay():
    # given u1's merge of anon:v1 (hot, at its sequence 5 of the merge), and the merge's replay
    source = snapshot(5, 80, "hot", raw=80.0)._replace(merged_into="u1")
    merge = scored(outcome="merged", merged_from="anon:v1")._replace(merged_source=source)
    replay = scored(outcome="duplicate", merged_from="anon:v1")._replace(merged_source=source)

    for outcome in (merge, replay):
        out = records(outcome)
        # then the source's record says it holds nothing now, the merge naming where it went
        mine = [r for r in out if r.key == b"acme:anon:v1"]
        assert mine[0] == OutRecord(
            "changes",
            b"acme:anon:v1",
            MERGED_AWAY,
            [
                ("ce_specversion", b"1.0"),
                ("ce_id", b"acme:anon:v1:5"),
                ("ce_source", b"/engagement/scorer"),
                ("ce_type", b"org.candidate-engagement.score.changed.v1"),
                ("ce_time", b"2026-11-25T20:28:36.341Z"),
                ("ce_subject", b"acme:anon:v1"),
                ("ce_sequence", b"5"),
                ("content-type", b"application/json"),
            ],
        )
        # and the latest topic gets the source's tombstone, not its state
        assert mine[1:] == [OutRecord("latest", b"acme:anon:v1", None, [])]


def test_a_source_scored_in_the_batch_of_its_merge_gets_a_tombstone_not_a_snapshot():
    # given a batch with anon:v1's event, then its merge into u1
    event = scored(2, candidate="anon:v1")
    source = snapshot(3, 9, "warm")._replace(merged_into="u1")
    merge = scored(outcome="merged", merged_from="anon:v1")._replace(merged_source=source)

    latest = [r for r in records(event, merge) if r.topic == "latest"]

    # then the latest topic holds u1's snapshot and anon:v1's tombstone, last
    assert [(r.key, r.value is None) for r in latest] == [
        (b"acme:u1", False),
        (b"acme:anon:v1", True),
    ]


def job_moved(score_changed: bool = True) -> ApplyOutcome:
    """An event naming job J-1 that lifted its profile from 30 (cold) to 72 (hot), and dropped
    the candidate's weakest job J-0."""
    outcome = scored()
    if not score_changed:
        outcome = outcome._replace(before=Previous(2, 9, "warm"))
    states = (
        JobState("J-1", "u1", 3, AS_OF, 60.0, 72, "hot", 30, "cold"),
        JobState("J-0", "u1", 3),
    )
    return outcome._replace(jobs=states)


def test_a_change_that_moved_job_profiles_carries_them_on_its_change_record_only():
    changed, latest = records(job_moved())

    assert changed.value == VALUE[:-1] + (
        b',"jobs":[{"jobId":"J-1","candidateId":"u1","score":72,"previousScore":30,'
        b'"tier":"hot","previousTier":"cold","raw":60.0,"sequence":3,'
        b'"asOf":"2026-11-25T20:28:36.341882Z"},'
        b'{"jobId":"J-0","candidateId":"u1","score":1,"previousScore":null,"tier":null,'
        b'"previousTier":null,"raw":0.0,"sequence":3,"asOf":null}]}'
    )
    assert latest.value == VALUE  # the snapshot is the candidate's state alone
    jobs = ScoreChange.model_validate_json(changed.value or b"").jobs
    assert [(j.jobId, j.tier) for j in jobs] == [("J-1", "hot"), ("J-0", None)]
    assert isinstance(jobs[0], JobChange)


def test_a_change_of_job_profiles_is_published_when_the_candidates_integer_score_stays():
    out = records(job_moved(score_changed=False))

    assert [r.topic for r in out] == ["changes", "latest"]
    assert b'"jobs":' in (out[0].value or b"")


def test_a_record_without_jobs_leaves_the_field_out_when_built_from_a_score_change():
    changed, _ = records(scored())
    change = ScoreChange.model_validate_json(changed.value or b"")

    assert record("changes", change, "score.changed").value == changed.value


def replayed_with_job(sequence: int, job: str, job_sequence: int, candidate: str = "u1"):
    """A duplicate whose event named ``job``: the job's current state, without previous values."""
    state = JobState(job, candidate, job_sequence, AS_OF, 60.0, 72, "hot", None, None)
    return scored(sequence, outcome="duplicate")._replace(jobs=(state,))


def test_a_replay_carries_the_job_states_its_duplicates_found_on_its_newest_state_only():
    # given a batch replayed after a crash: two duplicates found J-1 (the second newer), one J-2
    batch = (
        replayed_with_job(3, "J-1", 2),
        replayed_with_job(3, "J-2", 3),
        replayed_with_job(3, "J-1", 3),
    )
    # when its records are built
    changed, latest = records(*batch)
    # then one change record re-publishes the newest state without previous values, with the
    # newest state of each job and none of theirs either; the snapshot carries no jobs
    change = ScoreChange.model_validate_json(changed.value or b"")
    assert (changed.topic, change.sequence, change.previousTier) == ("changes", 3, None)
    found = [(j.jobId, j.sequence, j.tier, j.previousTier, j.previousScore) for j in change.jobs]
    assert found == [("J-1", 3, "hot", None, None), ("J-2", 3, "hot", None, None)]
    assert latest.topic == "latest"
    assert b'"jobs"' not in (latest.value or b"")


def test_a_replay_followed_by_a_change_still_publishes_the_job_states_its_duplicates_found():
    # given a replayed duplicate that found J-1, then a new event changing the integer score
    out = records(replayed_with_job(3, "J-1", 3), scored(4))
    # then the new change's record, then a replay of the newest state carrying J-1's state
    changes = [ScoreChange.model_validate_json(r.value or b"") for r in out if r.topic == "changes"]
    assert [(c.sequence, c.previousTier, [j.jobId for j in c.jobs]) for c in changes] == [
        (4, "cold", []),
        (4, None, ["J-1"]),
    ]
