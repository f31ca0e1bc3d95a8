"""The console's totals, read from the Prometheus text format the process exposes."""

from __future__ import annotations

from sidecar.runtime.console.numbers import read, rejected, would_deny_rows

EXPOSITION = """\
# HELP signed_url_verifications_total Verify decisions.
# TYPE signed_url_verifications_total counter
signed_url_verifications_total{decision="allow",result="ok",scheme="md5",source="books"} 7.0
signed_url_verifications_total{decision="deny",result="invalid",scheme="md5",source="books"} 2.0
signed_url_verifications_total{decision="deny",result="expired",scheme="md5",source="books"} 1.0
signed_url_verifications_total{decision="would_deny",result="missing",scheme="md5",source="rep"} 4.0
signed_url_verifications_total{decision="allow",result="ok",scheme="md5",source="rep"} 1.0
signed_url_verifications_total{decision="deny",result="invalid",scheme="md5",source="idle"} 0.0
# HELP signed_url_key_matches_total Valid signatures by key.
# TYPE signed_url_key_matches_total counter
signed_url_key_matches_total{key="k1",source="books"} 7.0
# HELP signed_url_key_last_match_timestamp_seconds Last match.
# TYPE signed_url_key_last_match_timestamp_seconds gauge
signed_url_key_last_match_timestamp_seconds{key="k1",pid="11",source="books"} 1700000000.0
signed_url_key_last_match_timestamp_seconds{key="k1",pid="12",source="books"} 1700000500.0
signed_url_key_last_match_timestamp_seconds{key="k2",source="books"} 0.0
"""


def test_totals_per_source_split_by_decision_and_reason() -> None:
    snapshot = read(EXPOSITION)
    books = snapshot.counts("books")
    assert (books.total, books.denied, books.would_deny, rejected(books)) == (10, 3, 0, 3)
    assert books.by_reason[("invalid", "deny")] == 2
    report = snapshot.counts("rep")
    assert (report.total, report.denied, report.would_deny) == (5, 0, 4)


def test_a_source_without_series_counts_zero() -> None:
    assert read(EXPOSITION).counts("never-asked").total == 0


def test_the_live_json_lists_only_sources_that_saw_requests() -> None:
    live = read(EXPOSITION).as_json()
    assert set(live) == {"books", "rep"}
    assert ["expired", "deny", 1.0] in live["books"]["reasons"]


def test_key_matches_and_the_newest_last_match_of_any_worker() -> None:
    snapshot = read(EXPOSITION)
    assert snapshot.key_matches[("books", "k1")] == 7
    assert snapshot.key_last_match[("books", "k1")] == 1700000500.0
    assert ("books", "k2") not in snapshot.key_last_match  # 0: never matched


def test_would_deny_rows_are_report_mode_denials_most_first() -> None:
    assert would_deny_rows(read(EXPOSITION)) == [("rep", "missing", 4.0)]
