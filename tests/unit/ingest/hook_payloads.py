"""Hypothesis strategies for platform hook payloads: arbitrary JSON, and the platforms' real
payloads (tests/unit/ingest/fixtures) with parts replaced by arbitrary JSON."""

from __future__ import annotations

import copy
from typing import Any

from hypothesis import strategies as st

from tests.unit.ingest.fixtures.platform_payloads import (
    GENERIC_LEAD,
    GOOGLE_TEST_LEAD,
    LINKEDIN_LEAD_CREATED,
    META_LEADGEN,
)

FIXTURES: dict[str, Any] = {
    "meta": META_LEADGEN,
    "linkedin": LINKEDIN_LEAD_CREATED,
    "google": GOOGLE_TEST_LEAD,
    "generic": GENERIC_LEAD,
}

JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4)
    ),
    max_leaves=20,
)
HUGE_NUMBERS = st.sampled_from([10**400, -(10**400), 1e308, -1e308, 2**63, 10**20])


def key_paths(document: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every key path inside ``document`` (the document itself included)."""
    found = [prefix]
    if isinstance(document, dict):
        for key, value in document.items():
            found += key_paths(value, (*prefix, key))
    elif isinstance(document, list):
        for index, value in enumerate(document):
            found += key_paths(value, (*prefix, index))
    return found


def replaced(document: Any, path: tuple[Any, ...], value: Any) -> Any:
    """A deep copy of ``document`` with the value at ``path`` replaced by ``value``."""
    if not path:
        return value
    copied = copy.deepcopy(document)
    parent = copied
    for step in path[:-1]:
        parent = parent[step]
    parent[path[-1]] = value
    return copied


@st.composite
def payloads(draw: st.DrawFn, provider: str) -> Any:
    """Arbitrary JSON, or the provider's real payload with a few parts replaced by arbitrary JSON."""
    if draw(st.booleans()):
        return draw(JSON)
    document = FIXTURES[provider]
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(key_paths(document)))
        document = replaced(document, path, draw(JSON | HUGE_NUMBERS))
    return document
