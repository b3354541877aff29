"""The erasure fences' pure parts: a fence names no one, and its value tells when it goes."""

from __future__ import annotations

import math
from datetime import UTC, datetime

from engagement.store.erasure_fence import (
    FENCE_SECONDS,
    REACHED_SECONDS,
    _first_end,
    _instants,
    fence_id,
    new_token,
)


def test_a_fence_id_is_a_digest_that_names_neither_tenant_nor_id() -> None:
    fid = fence_id("acme", "jane@example.com")
    assert fid == fence_id("acme", "jane@example.com")
    assert "jane" not in fid and "acme" not in fid and len(fid) == 32
    assert fid != fence_id("acme2", "jane@example.com")
    # the digest joins tenant and id with U+001F, which no id holds (ingest's door checks refuse
    # control characters: services.ingest.event_guards), so two pairs never share a fence
    assert fence_id("ab", "c") != fence_id("a", "bc")


def test_a_value_gives_requested_and_reached_instants() -> None:
    asked = datetime(2026, 12, 1, 12, tzinfo=UTC)
    reached = datetime(2026, 12, 1, 12, 5, tzinfo=UTC)
    assert _instants("2026-12-01T12:00:00.000Z") == (asked.timestamp(), math.inf)
    assert _instants("2026-12-01T12:00:00.000Z 2026-12-01T12:05:00.000Z") == (
        asked.timestamp(),
        reached.timestamp(),
    )


def test_an_unreadable_value_is_long_past() -> None:
    assert _instants("not a time") == (-math.inf, -math.inf)


def test_a_fence_goes_an_hour_after_it_was_reached_or_a_week_after_it_was_raised() -> None:
    assert _first_end({}) == math.inf
    assert _first_end({"a": ("", 100.0, math.inf)}) == 100.0 + FENCE_SECONDS
    assert _first_end({"a": ("", 100.0, 200.0)}) == 200.0 + REACHED_SECONDS
    assert _first_end({"a": ("", 100.0, math.inf), "b": ("", 50.0, 60.0)}) == 60.0 + REACHED_SECONDS


def test_change_tokens_never_repeat_and_are_no_fence_id() -> None:
    tokens = {new_token() for _ in range(1000)}
    assert len(tokens) == 1000
    assert all(len(t) == 16 for t in tokens)
