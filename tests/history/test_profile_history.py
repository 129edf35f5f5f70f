"""A cached profile history counts from an index kept current as entries are recorded: every
count equals a scan of the entries, whatever the order of loads, counts and records."""

from __future__ import annotations

import datetime as dt

from hypothesis import given, settings
from hypothesis import strategies as st

from overture.history.ledger import Entry, ProfileHistory

T0 = dt.datetime(2026, 12, 1)
entries = st.builds(
    Entry,
    event=st.sampled_from(["presented", "accepted", "rejected"]),
    offer_code=st.sampled_from(["A", "B", "C"]),
    categories=st.lists(st.sampled_from(["x", "y", "z"]), max_size=3).map(tuple),
    channel=st.sampled_from(["web", "email"]),
    at=st.integers(0, 100).map(lambda m: T0 + dt.timedelta(minutes=m)),
)
counts = st.tuples(
    st.sampled_from(["presented", "accepted", "rejected"]),
    st.sampled_from(["offer", "channel", "category"]),
    st.sampled_from(["A", "B", "C", "web", "email", "x", "y", "z"]),
    st.none() | st.integers(0, 100).map(lambda m: T0 + dt.timedelta(minutes=m)),
)


def scanned(items: list[Entry], event: str, scope: str, key: str, since: dt.datetime | None) -> int:
    n = 0
    for e in items:
        if e.event != event or (since is not None and e.at < since):
            continue
        n += {"offer": e.offer_code == key, "channel": e.channel == key}.get(
            scope, key in e.categories
        )
    return n


@settings(max_examples=300, deadline=None)
@given(
    loaded=st.lists(entries, max_size=8),
    steps=st.lists(st.one_of(entries, counts), max_size=30),
)
def test_counts_equal_a_scan_through_records_and_counts(
    loaded: list[Entry], steps: list[Entry | tuple[str, str, str, dt.datetime | None]]
) -> None:
    history = ProfileHistory.of(3, loaded)
    seen = list(loaded)
    for step in steps:
        if isinstance(step, Entry):
            history.record(step)  # before or after the index is built: both stay right
            seen.append(step)
        else:
            assert history.count(*step) == scanned(seen, *step), step


def test_an_entry_counts_once_per_category_even_when_named_twice() -> None:
    history = ProfileHistory.of(1, [Entry("presented", "A", ("x", "x"), "web", T0)])
    assert history.count("presented", "category", "x", None) == 1
    history.record(Entry("presented", "B", ("x", "x"), "web", T0))
    assert history.count("presented", "category", "x", T0) == 2
    assert history.count("presented", "category", "x", T0 + dt.timedelta(seconds=1)) == 0
