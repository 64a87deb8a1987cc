"""The filter of customers with history: never a false "no", fixed memory (unit, no I/O)."""

from __future__ import annotations

import tracemalloc

from hypothesis import given
from hypothesis import strategies as st

from arbiter.server.storage.inprocess.histories import SeenFilter


@given(st.lists(st.tuples(st.text(max_size=8), st.text(max_size=20)), max_size=200))
def test_every_added_customer_is_reported_seen(keys: list[tuple[str, str]]) -> None:
    seen = SeenFilter(bits=1 << 12)
    for key in keys:
        seen.add(key)
    assert all(key in seen for key in keys)


def test_memory_does_not_grow_with_customers_and_false_positives_stay_rare() -> None:
    customers = [("t", f"customer-{i}") for i in range(50_000)]  # made before measuring: they are the input
    tracemalloc.start()
    try:
        seen = SeenFilter()
        empty, _ = tracemalloc.get_traced_memory()
        for key in customers:
            seen.add(key)
        full, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # Fixed memory: 2^24 bits (2 MiB) whether it holds none or 50,000 customers. Keeping the keys
    # themselves (a set of them, say) would add megabytes here.
    assert 2 * 1024 * 1024 <= empty < 2 * 1024 * 1024 + 64 * 1024
    assert full - empty < 16 * 1024
    assert ("t", "customer-123") in seen
    false_positives = sum(("t", f"stranger-{i}") in seen for i in range(20_000))
    assert false_positives < 20  # 0.1% at this load with 2^24 bits and 4 hashes
