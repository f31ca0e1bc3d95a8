"""The verify decisions' metrics in one process: plain counts, written in the text format
that Prometheus' own parser reads back exactly (checked against a real Prometheus in
tests/process/observability)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.parser import text_string_to_metric_families

from sidecar import config
from sidecar.core.verdict import Reason
from sidecar.policy.decide import NO_SOURCE, Decision, Outcome
from sidecar.policy.settings import SourceSettings
from sidecar.runtime.endpoints import accepts_gzip
from sidecar.runtime.tally import DURATION_BUCKETS, Counts, LocalTally, SharedTally
from sidecar.runtime.workers import MULTIPROCESS_ENV
from tests.support.configs import md5_source, sidecar_config


def books(tmp_path: Path) -> SourceSettings:
    path = tmp_path / "sidecar.toml"
    path.write_text(sidecar_config(md5_source("books", "/books/", {"k1": "t" * 20})))
    source = config.load(path).source("books")
    assert source is not None
    return source


Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]  # by name and label set


def samples(tally: LocalTally) -> Samples:
    return parsed(tally.text())


def parsed(text: str) -> Samples:
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def as_scraped(counts: Counts) -> Samples:
    """A snapshot in the shape of parsed samples, to compare with what a scrape shows."""
    names = ("source", "scheme", "result", "decision")
    shown = {("signed_url_verifications_total", frozenset(zip(names, labels, strict=True))): n
             for labels, n in counts.verifications.items()}  # fmt: skip
    for (source, key), n in counts.key_matches.items():
        shown["signed_url_key_matches_total", frozenset({("source", source), ("key", key)})] = n
    for (source, key), at in counts.key_last_match.items():
        labels = frozenset({("source", source), ("key", key)})
        shown["signed_url_key_last_match_timestamp_seconds", labels] = at
    return shown


def of_snapshot(read: Samples) -> Samples:
    """The samples a snapshot holds: decisions, key matches and (matched) last matches."""
    families = ("signed_url_verifications_total", "signed_url_key_matches_total",
                "signed_url_key_last_match_timestamp_seconds")  # fmt: skip
    return {key: value for key, value in read.items() if key[0] in families and
            not (key[0].endswith("_seconds") and value == 0)}  # fmt: skip


def test_counts_and_the_histogram_read_back_exactly(tmp_path: Path) -> None:
    source, tally = books(tmp_path), LocalTally()
    for seconds in (0.00001, 0.00001, 0.00002, 0.2):  # 10 µs sits in the 10 µs bucket (le)
        tally.record(Decision(200, Reason.OK, Outcome.ALLOW, source, "k1"), seconds)
    tally.record(Decision(401, Reason.INVALID, Outcome.DENY, source), 0.00003)
    tally.record(Decision(403, Reason.NO_SOURCE, Outcome.DENY), 0.000001)
    read = samples(tally)
    ok = frozenset({("source", "books"), ("scheme", "md5-token"), ("result", "ok"),
                    ("decision", "allow")})  # fmt: skip
    assert read["signed_url_verifications_total", ok] == 4
    no_source = frozenset({("source", NO_SOURCE), ("scheme", NO_SOURCE),
                           ("result", "no_source"), ("decision", "deny")})  # fmt: skip
    assert read["signed_url_verifications_total", no_source] == 1
    keys = frozenset({("source", "books"), ("key", "k1")})
    assert read["signed_url_key_matches_total", keys] == 4
    assert read["signed_url_key_last_match_timestamp_seconds", keys] > 1.7e9

    def bucket(le: str) -> float:
        labels = frozenset({("scheme", "md5-token"), ("le", le)})
        return read["signed_url_verification_duration_seconds_bucket", labels]

    assert bucket("1e-05") == 2 and bucket("2.5e-05") == 3 and bucket("5e-05") == 4
    assert bucket("0.1") == 4 and bucket("+Inf") == 5  # 0.2 s is beyond the last bound
    scheme = frozenset({("scheme", "md5-token")})
    assert read["signed_url_verification_duration_seconds_count", scheme] == 5
    assert abs(read["signed_url_verification_duration_seconds_sum", scheme] - 0.20007) < 1e-9
    buckets = [k for k in read if k[0].endswith("_bucket") and ("scheme", "md5-token") in k[1]]
    assert len(buckets) == len(DURATION_BUCKETS) + 1


def test_ensured_series_read_zero_and_forgotten_sources_go(tmp_path: Path) -> None:
    source, tally = books(tmp_path), LocalTally()
    tally.ensure(("books", "md5-token", Reason.EXPIRED, Outcome.DENY))
    tally.ensure_key(("books", "k1"))
    tally.record(Decision(200, Reason.OK, Outcome.ALLOW, source, "k1"), 0.00002)
    expired = frozenset({("source", "books"), ("scheme", "md5-token"), ("result", "expired"),
                         ("decision", "deny")})  # fmt: skip
    assert samples(tally)["signed_url_verifications_total", expired] == 0
    tally.forget({NO_SOURCE})
    assert 'source="books"' not in tally.text()


def test_gzip_is_sent_only_to_clients_that_accept_it() -> None:
    for value in ("gzip", "identity, gzip", "GZIP;q=0.5", "br, gzip ; q=1"):
        assert accepts_gzip(value), value
    for refused in (None, "", "identity", "gzip;q=0", "gzip; q=0.000", "gzip;q=x", "x-gzip"):
        assert not accepts_gzip(refused), refused


def test_a_snapshot_holds_the_numbers_the_text_shows(tmp_path: Path) -> None:
    source, tally = books(tmp_path), LocalTally()
    tally.ensure(("books", "md5-token", Reason.EXPIRED, Outcome.DENY))
    tally.ensure_key(("books", "k2"))
    for _ in range(3):
        tally.record(Decision(200, Reason.OK, Outcome.ALLOW, source, "k1"), 0.00002)
    tally.record(Decision(403, Reason.NO_SOURCE, Outcome.DENY), 0.000001)
    snapshot = tally.snapshot()
    assert snapshot.verifications[("books", "md5-token", "ok", "allow")] == 3
    assert snapshot.key_matches == {("books", "k1"): 3, ("books", "k2"): 0}
    assert as_scraped(snapshot) == of_snapshot(samples(tally))
    tally.record(Decision(200, Reason.OK, Outcome.ALLOW, source, "k1"), 0.00002)
    assert snapshot.key_matches[("books", "k1")] == 3  # a copy: later counts are not in it


WORKER = """
import sys
from sidecar import config
from sidecar.core.verdict import Reason
from sidecar.policy.decide import Decision, Outcome
from sidecar.runtime.tally import SharedTally

source = config.load(sys.argv[1]).source("books")
tally = SharedTally(sys.argv[2])
for _ in range(int(sys.argv[3])):
    tally.record(Decision(200, Reason.OK, Outcome.ALLOW, source, "k1"), 0.00002)
tally.record(Decision(401, Reason.INVALID, Outcome.DENY, source), 0.00003)
tally.key_last_match.labels("books", "k1").set(float(sys.argv[4]))
"""


def test_with_workers_a_snapshot_sums_every_worker_as_a_scrape_does(tmp_path: Path) -> None:
    books(tmp_path)
    folder = tmp_path / "metrics"
    folder.mkdir()
    env = {**os.environ, MULTIPROCESS_ENV: str(folder)}
    for allowed, last_match in ((2, "1700000500"), (5, "1700000100")):  # two workers
        worker = [sys.executable, "-c", WORKER, str(tmp_path / "sidecar.toml"), str(folder),
                  str(allowed), last_match]  # fmt: skip
        subprocess.run(worker, env=env, check=True, timeout=60)
    snapshot = SharedTally(str(folder)).snapshot()
    assert snapshot.verifications[("books", "md5-token", "ok", "allow")] == 7
    assert snapshot.verifications[("books", "md5-token", "invalid", "deny")] == 2
    assert snapshot.key_matches == {("books", "k1"): 7}
    assert snapshot.key_last_match == {("books", "k1"): 1700000500}  # the newest of any worker
    merged = CollectorRegistry()
    MultiProcessCollector(merged, path=str(folder))  # type: ignore[no-untyped-call]
    assert as_scraped(snapshot) == of_snapshot(parsed(generate_latest(merged).decode()))
