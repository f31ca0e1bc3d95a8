"""The verify decisions' metrics in one process: plain counts, written in the text format
that Prometheus' own parser reads back exactly (checked against a real Prometheus in
tests/process/observability)."""

from __future__ import annotations

from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from sidecar import config
from sidecar.core.verdict import Reason
from sidecar.policy.decide import NO_SOURCE, Decision, Outcome
from sidecar.policy.settings import SourceSettings
from sidecar.runtime.endpoints import accepts_gzip
from sidecar.runtime.tally import DURATION_BUCKETS, LocalTally
from tests.conftest import md5_source, sidecar_config


def books(tmp_path: Path) -> SourceSettings:
    path = tmp_path / "sidecar.toml"
    path.write_text(sidecar_config(md5_source("books", "/books/", {"k1": "t" * 20})))
    source = config.load(path).source("books")
    assert source is not None
    return source


def samples(tally: LocalTally) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(tally.text())
        for sample in family.samples
    }


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
