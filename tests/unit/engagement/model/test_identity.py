"""Which identity merges may go ahead (engagement.model.identity): never a loop, batch = one by one."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from engagement.model.identity import screen_merges

IDS = ["A", "B", "C", "D", "E", "F"]
ROOTS: dict[str, str | None] = dict.fromkeys(IDS)


def test_merge_into_a_candidate_that_is_not_merged_goes_ahead() -> None:
    assert screen_merges([("A", "B")], ROOTS, max_depth=2) == ["go"]


def test_merge_into_an_id_that_resolves_to_the_source_would_close_a_loop() -> None:
    links = ROOTS | {"A": "B", "B": "C"}
    assert screen_merges([("C", "A"), ("C", "B")], links, max_depth=2) == ["cycle", "cycle"]


def test_merge_into_an_id_merged_elsewhere_goes_ahead_to_its_final_candidate() -> None:
    assert screen_merges([("C", "A")], ROOTS | {"A": "B"}, max_depth=2) == ["go"]


def test_merges_of_one_batch_see_the_merges_before_them() -> None:
    merges = [("A", "B"), ("B", "C"), ("C", "A")]
    assert screen_merges(merges, ROOTS, max_depth=2) == ["go", "go", "cycle"]


def test_merge_of_a_source_already_merged_is_left_to_step_one() -> None:
    # step 1 answers a replay (same target) or refuses another target, atomically
    assert screen_merges([("A", "B"), ("A", "C")], ROOTS | {"A": "B"}, max_depth=2) == [
        "go",
        "go",
    ]


def test_target_further_than_the_depth_from_its_candidate_is_too_deep() -> None:
    links = ROOTS | {"B": "C", "C": "D", "D": "E"}
    assert screen_merges([("A", "C"), ("F", "B")], links, max_depth=2) == ["go", "too_deep"]
    assert screen_merges([("A", "B")], {"A": None, "B": "C", "C": "D"}, max_depth=2) == [
        "too_deep"  # D was not read: it lies beyond the depth
    ]


pairs = st.lists(
    st.tuples(st.sampled_from(IDS), st.sampled_from(IDS)).filter(lambda p: p[0] != p[1]),
    max_size=12,
)


def accepted_links(merges: list[tuple[str, str]], verdicts: list[str]) -> dict[str, str | None]:
    links = dict(ROOTS)
    for (source, target), verdict in zip(merges, verdicts, strict=True):
        if verdict == "go" and links[source] is None:
            links[source] = target
    return links


@given(pairs)
def test_accepted_merges_never_form_a_loop(merges: list[tuple[str, str]]) -> None:
    links = accepted_links(merges, screen_merges(merges, ROOTS, max_depth=len(IDS)))
    for start in IDS:
        seen, node = {start}, links[start]
        while node is not None:
            assert node not in seen
            seen.add(node)
            node = links[node]


@given(pairs, st.integers(min_value=0, max_value=12))
def test_a_batch_is_screened_as_its_merges_one_by_one(
    merges: list[tuple[str, str]], cut: int
) -> None:
    whole = screen_merges(merges, ROOTS, max_depth=2)
    first = screen_merges(merges[:cut], ROOTS, max_depth=2)
    rest = screen_merges(merges[cut:], accepted_links(merges[:cut], first), max_depth=2)
    assert whole == first + rest
