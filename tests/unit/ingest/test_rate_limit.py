"""Fixed rate-limit windows: which window an instant falls in, and how long until the next."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from services.ingest.rate_limit import key_id, window_of


@given(st.floats(0, 4e9), st.sampled_from([1.0, 10.0, 60.0, 3600.0]))
def test_the_wait_reaches_exactly_the_next_window(now: float, window: float) -> None:
    index, left = window_of(now, window)
    assert 0 < left <= window
    assert index * window <= now < (index + 1) * window


def test_key_ids_do_not_reveal_the_key() -> None:
    assert "rk_secret" not in key_id("rk_secret")
    assert key_id("rk_secret") == key_id("rk_secret") != key_id("rk_other")
