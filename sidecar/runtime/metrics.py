"""Prometheus metrics. Labels come from the config, never from a request.

Bounded for many tenants (SPEC §12): latency is a histogram per scheme (not per source,
which would be 16 series per tenant); with more than ``INITIALISED_SOURCES`` sources, a
source's verification series are created by its first request (not a zero for every
reason at start) and key-match series start at 0 only where a source holds several keys.
10,000 idle sources add nothing to a scrape; each source that sees traffic adds a few lines.
"""

from __future__ import annotations

import os
import time

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    ProcessCollector,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.multiprocess import MultiProcessCollector

from sidecar import __version__
from sidecar.core.verdict import Reason
from sidecar.policy.decide import NO_SOURCE, Decision, Outcome
from sidecar.policy.settings import Mode, Settings, SourceSettings

# Set (by the worker supervisor) before prometheus_client is imported in a worker: every
# worker then writes its samples to files there, and any worker's /metrics sums them all.
MULTIPROCESS_ENV = "PROMETHEUS_MULTIPROC_DIR"
# From 10 µs (a cached MD5 check) to 100 ms (something is badly wrong).
DURATION_BUCKETS = (
    0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005,
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
)  # fmt: skip
SIGNING_RESULTS = ("ok", "unauthorized", "bad_request", "busy", "rate_limited")
_SOURCELESS_REASONS = (Reason.NON_CANONICAL, Reason.NO_SOURCE)
_DENY_REASONS = tuple(r for r in Reason if r not in (Reason.OK, Reason.UNSIGNED_ALLOWED))
# Up to this many sources, every source's series exist from the start (about 13 each);
# beyond, a source's series appear with its first request, so 10,000 idle tenants cost a
# scrape nothing.
INITIALISED_SOURCES = 100
_HEADERS = tuple(
    f"# HELP {name} {text}\n# TYPE {name} {kind}\n"
    for name, text, kind in (
        ("signed_url_verifications_total",
         "Verify decisions by source, scheme, result (reason) and decision.", "counter"),
        ("signed_url_key_matches_total",
         "Valid signatures by the key that matched (safe to retire a key at 0 rate).", "counter"),
        ("signed_url_key_last_match_timestamp_seconds",
         "Unix time (to the second) a key last verified a signature.", "gauge"),
    )
)  # fmt: skip


class Metrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        # A *_created sample per counter would double the lines for nothing a dashboard reads.
        disable_created_metrics()  # type: ignore[no-untyped-call]
        self.registry = registry
        ProcessCollector(registry=registry)  # process_cpu_seconds_total, resident memory, fds
        self.verifications = Counter(
            "signed_url_verifications",
            "Verify decisions by source, scheme, result (reason) and decision.",
            ["source", "scheme", "result", "decision"],
            registry=None,  # rendered by _per_source_lines (see exposition)
        )
        self.duration = Histogram(
            "signed_url_verification_duration_seconds",
            "Time to decide one verify request, inside the sidecar, by scheme.",
            ["scheme"],
            buckets=DURATION_BUCKETS,
            registry=registry,
        )
        self.key_matches = Counter(
            "signed_url_key_matches",
            "Valid signatures by the key that matched (safe to retire a key at 0 rate).",
            ["source", "key"],
            registry=None,  # rendered by _per_source_lines (see exposition)
        )
        self.key_last_match = Gauge(
            "signed_url_key_last_match_timestamp_seconds",
            "Unix time (to the second) a key last verified a signature.",
            ["source", "key"],
            registry=None,  # rendered by _per_source_lines (see exposition)
            multiprocess_mode="max",  # the newest over every worker
        )
        self.signing_requests = Counter(
            "signed_url_signing_requests",
            "Signing API requests by team and result.",
            ["team", "result"],
            registry=registry,
        )
        self.profile_headers_missing = Counter(
            "signed_url_proxy_headers_missing",
            "Verify requests without the headers of the configured proxy profile "
            "(the proxy in front is likely not the one [server] proxy names).",
            registry=registry,
        )
        self.reloads = Counter(
            "signed_url_config_reloads",
            "Configuration reloads by result (success or failure).",
            ["result"],
            registry=registry,
        )
        self.last_reload = Gauge(
            "signed_url_config_last_reload_success_timestamp_seconds",
            "Unix time of the last successful configuration load.",
            registry=registry,
            # With several workers: the newest of them, and no per-process series that
            # would outlive a replaced worker.
            multiprocess_mode="max",
        )
        build = Gauge(
            "signed_url_build_info",
            "Build information.",
            ["version"],
            registry=registry,
            multiprocess_mode="max",
        )
        build.labels(version=__version__).set(1)
        for result in ("success", "failure"):
            self.reloads.labels(result=result)
        # Label lookups cost microseconds; children are cached per label set (bounded:
        # labels come from the config's sources and the fixed reason vocabulary).
        # Each with its label set as the text format writes it, made once per series.
        self._decisions: dict[tuple[str, str, str, str], tuple[Counter, str]] = {}
        self._durations: dict[str, Histogram] = {}
        self._keys: dict[tuple[str, str], tuple[Counter, Gauge, str]] = {}
        self._last_match: dict[tuple[str, str], int] = {}

    def exposition(self) -> bytes:
        """The text format of every sample, summed over all workers when there are several
        (``process_*`` then describe the worker that answered)."""
        folder = os.environ.get(MULTIPROCESS_ENV)
        if not folder:
            return bytes(generate_latest(self.registry)) + self._per_source_lines()
        merged = CollectorRegistry()
        MultiProcessCollector(merged, path=folder)  # type: ignore[no-untyped-call]
        ProcessCollector(registry=merged)
        return bytes(generate_latest(merged))

    def _per_source_lines(self) -> bytes:
        """The families with a series per source and key, written directly: prometheus-client
        spends about 20 µs a line, this about 1 (10,000 tenants' worth of lines in
        milliseconds, not half a second). Label values come from the config (names are
        letters, digits, '_', '.', '-') and the fixed vocabularies: nothing to escape."""
        decisions = list(self._decisions.values())  # copies: the loop goes on recording
        keys = list(self._keys.values())
        lines = [_HEADERS[0]]
        lines += [
            f"signed_url_verifications_total{labels} {_value(child)}\n"
            for child, labels in decisions
        ]
        lines.append(_HEADERS[1])
        lines += [
            f"signed_url_key_matches_total{labels} {_value(matches)}\n"
            for matches, _, labels in keys
        ]
        lines.append(_HEADERS[2])
        lines += [
            f"signed_url_key_last_match_timestamp_seconds{labels} {_value(last)}\n"
            for _, last, labels in keys
            if _value(last)
        ]
        return "".join(lines).encode()

    def initialise(self, settings: Settings) -> None:
        """Create the series dashboards need at 0, so they show 0 rather than no data and
        rate() counts a reason's first occurrence. Every source's, when the config has at
        most ``INITIALISED_SOURCES``; beyond, a bounded set: the source-less series, a
        histogram per scheme, and the keys of sources that hold several (a rotation)."""
        for reason in _SOURCELESS_REASONS:
            self._decision_series(NO_SOURCE, NO_SOURCE, reason, Outcome.DENY)
        self.duration.labels(NO_SOURCE)
        for scheme in {source.scheme for source in settings.sources}:
            self.duration.labels(scheme)
        self.signing_requests.labels(NO_SOURCE, "unknown_team")
        for team in settings.teams:
            for result in SIGNING_RESULTS:
                self.signing_requests.labels(team.id, result)
        every_series = len(settings.sources) <= INITIALISED_SOURCES
        for source in settings.sources:
            for reason, outcome in _series(source) if every_series else ():
                if (source.name, source.scheme, reason, outcome) not in self._decisions:
                    self._decision_series(source.name, source.scheme, reason, outcome)
            key_ids = source.verifier.key_ids if source.verifier else ()
            for key_id in key_ids if every_series or len(key_ids) > 1 else ():
                if (source.name, key_id) not in self._keys:
                    self._key_series(source.name, key_id)

    def forget_sources_except(self, settings: Settings) -> None:
        """After a reload, drop the series of sources the config no longer has (a tenant
        removed must not be exported for ever). In multiprocess mode the workers' files
        keep them until the workers restart: prometheus-client cannot remove those."""
        if os.environ.get(MULTIPROCESS_ENV):
            return
        kept = {source.name for source in settings.sources} | {NO_SOURCE}
        for labels in [labels for labels in list(self._decisions) if labels[0] not in kept]:
            self._decisions.pop(labels, None)
            self.verifications.remove(*labels)
        for source, key in [labels for labels in list(self._keys) if labels[0] not in kept]:
            self._keys.pop((source, key), None)
            self._last_match.pop((source, key), None)
            self.key_matches.remove(source, key)
            self.key_last_match.remove(source, key)

    def record(self, decision: Decision, seconds: float) -> None:
        source = decision.source
        name, scheme = (source.name, source.scheme) if source else (NO_SOURCE, NO_SOURCE)
        labels = (name, scheme, decision.reason, decision.outcome)
        entry = self._decisions.get(labels) or self._decision_series(*labels)
        entry[0].inc()
        duration = self._durations.get(scheme)
        if duration is None:
            duration = self._durations[scheme] = self.duration.labels(scheme)
        duration.observe(seconds)
        if decision.key_id is not None:
            self._key_matched(name, decision.key_id)

    def _key_matched(self, source: str, key_id: str) -> None:
        labels = (source, key_id)
        children = self._keys.get(labels) or self._key_series(source, key_id)
        children[0].inc()
        second = int(time.time())
        if self._last_match.get(labels) != second:  # a gauge write at most once a second
            self._last_match[labels] = second
            children[1].set(second)

    def _decision_series(
        self, source: str, scheme: str, reason: Reason, outcome: Outcome
    ) -> tuple[Counter, str]:
        entry = self._decisions[source, scheme, reason, outcome] = (
            self.verifications.labels(source, scheme, reason, outcome),
            f'{{decision="{outcome.value}",result="{reason.value}",'
            f'scheme="{scheme}",source="{source}"}}',
        )
        return entry

    def _key_series(self, source: str, key_id: str) -> tuple[Counter, Gauge, str]:
        children = self._keys[source, key_id] = (
            self.key_matches.labels(source, key_id),
            self.key_last_match.labels(source, key_id),
            f'{{key="{key_id}",source="{source}"}}',
        )
        return children


def _value(child: Counter | Gauge) -> float:
    # prometheus-client keeps a child's number in ``_value`` (a lock-guarded float); reading
    # it is what its own collect() does, without building a Sample per line.
    return float(child._value.get())


def _series(source: SourceSettings) -> list[tuple[Reason, Outcome]]:
    if source.mode is Mode.OFF:
        return [(Reason.UNSIGNED_ALLOWED, Outcome.ALLOW), (Reason.METHOD, Outcome.DENY)]
    denied = Outcome.WOULD_DENY if source.mode is Mode.REPORT else Outcome.DENY
    # non_canonical happens inside a source too (a duplicated signature parameter).
    return [(Reason.OK, Outcome.ALLOW)] + [
        (r, denied) for r in _DENY_REASONS if r is not Reason.NO_SOURCE
    ]
