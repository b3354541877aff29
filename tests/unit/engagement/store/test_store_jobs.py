"""Planning a batch's jobs (pure): which interactions the store scores, for which candidate and
at which stage."""

from __future__ import annotations

from engagement.store.store_jobs import candidate_of, plan, unscored
from engagement.store.store_scripts import merge_source
from tests.unit.engagement.model.strategies import RULES, T0, alias, interaction


def test_an_event_scores_its_user_else_its_anonymous_id() -> None:
    assert candidate_of(interaction("m", T0, user_id="u1", anonymous_id="a1")) == "u1"
    assert candidate_of(interaction("m", T0, user_id=None, anonymous_id="a1")) == "anon:a1"


def test_a_scored_event_is_applied_to_its_candidate() -> None:
    job = plan(3, interaction("m", T0, event="Job Viewed"), RULES)
    assert job is not None
    assert (job.index, job.tenant, job.candidate, job.stage) == (3, "acme", "u1", "apply")
    assert job.event is not None and job.event.message_id == "m"


def test_an_event_the_rules_do_not_score_has_no_job() -> None:
    assert plan(0, interaction("m", T0, event="Nothing Of Note"), RULES) is None


def test_an_identify_takes_the_anonymous_profile_into_the_user() -> None:
    job = plan(0, interaction("i", T0, kind="identify", anonymous_id="a1"), RULES)
    assert job is not None
    assert (job.stage, job.candidate, job.source) == ("take", "u1", "anon:a1")


def test_an_identify_without_an_anonymous_id_merges_nothing() -> None:
    assert plan(0, interaction("i", T0, kind="identify"), RULES) is None


def test_an_alias_folds_its_previous_id_into_the_user() -> None:
    job = plan(0, alias("al", "old-crm-id", "u1"), RULES)
    assert job is not None and (job.stage, job.source) == ("take", "old-crm-id")
    assert merge_source(alias("al", "u1", "u1")) == "u1"
    assert plan(0, alias("al", "u1", "u1"), RULES) is None, "an alias of itself merges nothing"


def test_an_unscored_outcome_names_the_event_and_the_rules_version() -> None:
    outcome = unscored(interaction("m", T0, event="Nothing Of Note"), "v7")
    assert (outcome.outcome, outcome.candidate_id, outcome.event, outcome.rules_version) == (
        "unscored",
        "u1",
        "Nothing Of Note",
        "v7",
    )
