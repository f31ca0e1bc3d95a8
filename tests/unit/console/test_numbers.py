"""The console's totals, from the process's counts (``Metrics.snapshot``)."""

from __future__ import annotations

from sidecar.runtime.console.numbers import read, rejected, would_deny_rows
from sidecar.runtime.tally import Counts

COUNTS = Counts(
    verifications={
        ("books", "md5", "ok", "allow"): 7.0,
        ("books", "md5", "invalid", "deny"): 2.0,
        ("books", "md5", "expired", "deny"): 1.0,
        ("rep", "md5", "missing", "would_deny"): 4.0,
        ("rep", "md5", "ok", "allow"): 1.0,
        ("idle", "md5", "invalid", "deny"): 0.0,
    },
    key_matches={("books", "k1"): 7.0},
    key_last_match={("books", "k1"): 1700000500.0},
)


def test_totals_per_source_split_by_decision_and_reason() -> None:
    snapshot = read(COUNTS)
    books = snapshot.counts("books")
    assert (books.total, books.denied, books.would_deny, rejected(books)) == (10, 3, 0, 3)
    assert books.by_reason[("invalid", "deny")] == 2
    report = snapshot.counts("rep")
    assert (report.total, report.denied, report.would_deny) == (5, 0, 4)


def test_a_source_without_series_counts_zero() -> None:
    assert read(COUNTS).counts("never-asked").total == 0


def test_the_live_json_lists_only_sources_that_saw_requests() -> None:
    live = read(COUNTS).as_json()
    assert set(live) == {"books", "rep"}
    assert ["expired", "deny", 1.0] in live["books"]["reasons"]


def test_key_matches_and_last_matches_are_shown_as_counted() -> None:
    snapshot = read(COUNTS)
    assert snapshot.key_matches[("books", "k1")] == 7
    assert snapshot.key_last_match == {("books", "k1"): 1700000500.0}


def test_would_deny_rows_are_report_mode_denials_most_first() -> None:
    assert would_deny_rows(read(COUNTS)) == [("rep", "missing", 4.0)]


def test_the_snapshot_is_a_copy_later_counts_do_not_change() -> None:
    counts = Counts(key_matches={("books", "k1"): 1.0})
    snapshot = read(counts)
    counts.key_matches[("books", "k1")] = 2.0
    assert snapshot.key_matches[("books", "k1")] == 1.0
