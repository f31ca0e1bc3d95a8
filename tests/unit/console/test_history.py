"""The console's ring of samples: changes between reads per source, the window's order,
series dropped a window after their last count, and the memory of 10,000 sources."""

from __future__ import annotations

import gc
import tracemalloc

from sidecar.runtime.console.history import CAPACITY, History, changes_between
from sidecar.runtime.console.numbers import Snapshot, read
from sidecar.runtime.console.sampler import until_next
from sidecar.runtime.tally import Counts


def snapshot(
    ok: float, invalid: float = 0.0, *, source: str = "books", key: float = 0.0
) -> Snapshot:
    return read(
        Counts(
            verifications={
                (source, "md5", "ok", "allow"): ok,
                (source, "md5", "invalid", "deny"): invalid,
                (source, "md5", "missing", "would_deny"): 0.0,
            },
            key_matches={(source, "k1"): key} if key else {},
        )
    )


def test_the_first_read_is_a_baseline_not_a_sample() -> None:
    history = History()
    history.add(snapshot(1_000, 50), 100.0)  # totals since start: no interval's traffic
    assert history.taken == 0 and history.ranking() == []
    history.add(snapshot(1_010, 52, key=10), 105.0)
    books = history.window("books")
    assert (books.decisions, books.rejected(), books.times, books.spans) == (
        (12,), (2,), (105.0,), (5.0,)
    )  # fmt: skip
    assert books.reasons == {("invalid", "deny"): (2,)}
    assert books.keys == {"k1": (10,)}


def test_allowed_reasons_and_unchanged_series_are_not_kept() -> None:
    changes = changes_between(snapshot(5, 1), snapshot(9, 1))
    assert changes == {"books": {("total",): 4}}
    assert changes_between(snapshot(5, 1), snapshot(5, 1)) == {}


def test_a_total_that_went_down_counts_nothing() -> None:
    assert changes_between(snapshot(50, 5), snapshot(3, 1)) == {}


def test_a_source_without_traffic_in_the_window_has_zeros_of_the_window_length() -> None:
    history = History(capacity=4)
    history.add(snapshot(0), 0.0)
    history.add(snapshot(1), 5.0)
    idle = history.window("never-asked")
    assert idle.decisions == (0,) and idle.reasons == {} and idle.rejected() == (0,)


def test_the_window_is_oldest_first_and_keeps_capacity_samples() -> None:
    history = History(capacity=3)
    history.add(snapshot(0), 0.0)
    for step in range(1, 6):  # 1, 2, 3, 4, 5 decisions in turn
        history.add(snapshot(sum(range(step + 1))), 5.0 * step)
    books = history.window("books")
    assert books.decisions == (3, 4, 5)
    assert books.times == (15.0, 20.0, 25.0)


def test_a_series_goes_a_whole_window_after_its_last_count() -> None:
    history = History(capacity=3)
    history.add(snapshot(0, 0), 0.0)
    history.add(snapshot(10, 4), 5.0)  # a burst of 4 denials
    for step in range(2, 4):  # two quiet samples: the burst is still in the window
        history.add(snapshot(10 + step, 4), 5.0 * step)
    assert history.window("books").reasons == {("invalid", "deny"): (4, 0, 0)}
    history.add(snapshot(14, 4), 20.0)  # the burst's sample leaves the window
    assert history.window("books").reasons == {}
    assert history.ranking() == [("books", 4, 0)]
    for step in range(5, 8):
        history.add(snapshot(14, 4), 5.0 * step)
    assert history.ranking() == []  # no traffic in the window: nothing kept


def test_the_ranking_sums_follow_the_window_as_it_slides() -> None:
    history = History(capacity=3)
    ok = invalid = 0.0
    history.add(snapshot(ok, invalid), 0.0)
    for step in range(1, 12):
        ok, invalid = ok + step % 4, invalid + (step * 7) % 3
        history.add(snapshot(ok + invalid, invalid), 5.0 * step)
        books = history.window("books")
        expected = [("books", sum(books.decisions), sum(books.rejected()))]
        assert history.ranking() == (expected if any(books.decisions) else [])


def test_ranking_puts_the_most_rejections_first() -> None:
    history = History()
    both = Snapshot(sources={**snapshot(0).sources, **snapshot(0, source="shop").sources})
    history.add(both, 0.0)
    later = Snapshot(sources={**snapshot(100, 0).sources, **snapshot(5, 3, source="shop").sources})
    history.add(later, 5.0)
    assert history.ranking() == [("shop", 8, 3), ("books", 100, 0)]


def test_sampling_waits_for_the_next_multiple_of_the_interval_at_least_half_of_one() -> None:
    assert until_next(1000.0) == 5.0
    assert until_next(1001.0) == 4.0
    assert until_next(1003.0) == 7.0  # 2 s away: the one after


def _many(sources: int, step: int) -> Snapshot:
    """Every source with traffic and one rejection reason; one key each, which has no
    series of its own beyond 100 sources (``metrics.tracks_keys``), so none here."""
    return read(
        Counts(
            verifications={
                **{(f"s{n}", "md5", "ok", "allow"): 10.0 * step for n in range(sources)},
                **{(f"s{n}", "md5", "invalid", "deny"): 1.0 * step for n in range(sources)},
            }
        )
    )


def test_ten_thousand_sources_with_traffic_stay_within_the_stated_memory() -> None:
    """docs/console.md states this figure. Every series is its full array from its first
    count on, so three samples show the memory of a full window. Counted: the ring and
    the last read, which it keeps as the baseline of the next sample."""
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        history = History()
        for step in range(3):
            history.add(_many(10_000, step), 5.0 * step)
        gc.collect()
        used = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert len(history.ranking()) == 10_000 and history.window("s1").reasons
    assert CAPACITY == 180
    assert used < 32 * 2**20, f"{used / 2**20:.1f} MiB"
    print(f"10,000 sources with traffic: {used / 2**20:.1f} MiB")
