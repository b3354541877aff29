"""The scorer's batched histogram update counts exactly what one observe per amount counts."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry, Histogram, generate_latest

from engagement.faust.web import LATENCY_BUCKETS
from services.scorer.metrics import observe_all

amounts = st.lists(
    st.one_of(
        st.sampled_from([0.0, *LATENCY_BUCKETS[:-1]]),  # exactly on a bound: that bucket
        st.floats(min_value=0, max_value=1e4, allow_nan=False),
    ),
    max_size=50,
)


@given(amounts)
def test_observe_all_exposes_what_observe_per_amount_exposes(values: list[float]) -> None:
    def exposed(observe_each: bool) -> bytes:
        registry = CollectorRegistry()
        histogram = Histogram("h_seconds", "h", buckets=LATENCY_BUCKETS, registry=registry)
        if observe_each:
            for value in values:
                histogram.observe(value)
        else:
            observe_all(histogram, values)
        return b"\n".join(
            line for line in generate_latest(registry).splitlines() if b"_created" not in line
        )

    assert exposed(observe_each=False) == exposed(observe_each=True)
