"""Time-sorted ids: their order is creation order, at millisecond resolution."""

from __future__ import annotations

import re

from hypothesis import given
from hypothesis import strategies as st

from js2mail.models import new_sorted_id

moments = st.floats(min_value=0, max_value=2**47 / 1000, allow_nan=False)


@given(a=moments, b=moments)
def test_ids_sort_like_their_milliseconds(a: float, b: float) -> None:
    first, second = new_sorted_id("msg", a), new_sorted_id("msg", b)
    assert re.fullmatch(r"msg_[0-9a-f]{32}", first)
    if int(a * 1000) < int(b * 1000):
        assert first < second
    elif int(a * 1000) > int(b * 1000):
        assert first > second


def test_ids_made_in_the_same_millisecond_differ() -> None:
    assert len({new_sorted_id("msg", 1_800_000_000.0) for _ in range(1000)}) == 1000
