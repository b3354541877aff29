"""The keyset cursors of the leaderboards and the job list (``engagement.store.rank_reads``): what
a page answers decodes back, what no page answers is refused before it reaches Redis."""

from __future__ import annotations

import base64
import math

import pytest

from engagement.store.rank_reads import decode_cursor, encode_cursor


def cursor(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode()


@pytest.mark.parametrize("rank", [0.0, -3.5, 1234.000001, 1e300, -math.inf])
def test_a_cursor_a_page_answers_decodes_to_its_entry(rank: float) -> None:
    # -inf: the rank key of a candidate whose raw sum is not positive, which can end a page
    assert decode_cursor(encode_cursor(rank, b"J/7|x")) == (rank, b"J/7|x")


@pytest.mark.parametrize("text", ["nan|J-1", "NaN|J-1", "-nan|J-1", "inf|J-1", "+inf|J-1",
                                  "infinity|J-1", "1e999|J-1", "nan|"])  # fmt: skip
def test_a_cursor_whose_rank_is_nan_or_plus_infinity_is_refused(text: str) -> None:
    with pytest.raises(ValueError):
        decode_cursor(cursor(text))


@pytest.mark.parametrize("text", ["0x10|J-1", "J-1", "", "1.5"])
def test_a_cursor_without_a_number_and_a_member_is_refused(text: str) -> None:
    with pytest.raises(ValueError):
        decode_cursor(cursor(text))


def test_a_cursor_that_is_not_base64_is_refused() -> None:
    with pytest.raises(ValueError):
        decode_cursor("abc")
