"""Exact counters, whichever worker served: what Prometheus scraped equals what was sent."""

from __future__ import annotations

import time
from collections import Counter

import sidecar
from tests.support.observed_run import Run
from tests.support.observed_traffic import VERIFICATIONS
from tests.support.prometheus import JOB, by


def test_verification_counters_equal_what_was_sent(run: Run) -> None:
    got = by(
        run.prometheus.query(f'{VERIFICATIONS}{{job="{JOB}"}}'),
        "source",
        "scheme",
        "result",
        "decision",
    )
    expected = {series: float(n) for series, n in run.traffic.verifications.items()}
    assert {series: n for series, n in got.items() if n} == expected
    # Series initialised from the config (a few sources: all of them) show 0, not "no data".
    assert got[("books", "md5-token", "unknown_key", "deny")] == 0
    assert got[("public", "md5-token", "method", "deny")] == 0
    total = run.traffic.through_nginx + run.traffic.direct
    [row] = run.prometheus.query(f'sum({VERIFICATIONS}{{job="{JOB}"}})')
    assert float(row["value"][1]) == total
    print(
        f"\nrequests: {run.traffic.through_nginx} through nginx, {run.traffic.direct} direct, "
        f"{sum(run.traffic.signing.values())} to the signing API; "
        f"{len(expected)} series matched exactly"
    )


def test_both_workers_served_and_their_sum_is_exact(run: Run) -> None:
    assert len(run.per_worker) == 2
    assert all(count > 0 for count in run.per_worker.values()), run.per_worker
    assert sum(run.per_worker.values()) == sum(run.traffic.verifications.values())


def test_latency_key_signing_and_reload_counters_are_exact(run: Run) -> None:
    prom, traffic = run.prometheus, run.traffic
    per_scheme = Counter[str]()
    for (_, scheme, _, _), n in traffic.verifications.items():
        per_scheme[scheme] += n
    counts = by(
        prom.query(f'signed_url_verification_duration_seconds_count{{job="{JOB}"}}'), "scheme"
    )
    assert {k: v for k, v in counts.items() if v} == {(s,): float(n) for s, n in per_scheme.items()}
    keys = by(prom.query(f'signed_url_key_matches_total{{job="{JOB}"}}'), "source", "key")
    assert keys == {k: float(traffic.key_matches[k]) for k in keys}
    assert set(traffic.key_matches) == set(keys)  # every key of the config has a series
    stamps = f'max by (source, key) (signed_url_key_last_match_timestamp_seconds{{job="{JOB}"}})'
    last = by(prom.query(stamps), "source", "key")
    assert set(last) == {key for key, n in traffic.key_matches.items() if n}  # matched ones
    assert all(run.started_at - 1 <= stamp <= time.time() for stamp in last.values()), last
    signing = by(prom.query(f'signed_url_signing_requests_total{{job="{JOB}"}}'), "team", "result")
    assert {k: v for k, v in signing.items() if v} == {
        k: float(n) for k, n in traffic.signing.items()
    }
    reloads = by(prom.query(f'signed_url_config_reloads_total{{job="{JOB}"}}'), "result")
    # Per worker: the refused file, the fixed file, then SIGHUP.
    assert reloads == {("failure",): 2.0, ("success",): 4.0}
    # Every worker's stamp (with or without a pid label) moved on at the SIGHUP reload.
    stamp = "signed_url_config_last_reload_success_timestamp_seconds"
    [oldest] = prom.query(f'min({stamp}{{job="{JOB}"}})')
    [newest] = prom.query(f'max({stamp}{{job="{JOB}"}})')
    assert (
        run.good_reload_at <= float(oldest["value"][1]) <= float(newest["value"][1]) <= time.time()
    )
    build = by(prom.query(f'max by (version) (signed_url_build_info{{job="{JOB}"}})'), "version")
    assert build == {(sidecar.__version__,): 1.0}
