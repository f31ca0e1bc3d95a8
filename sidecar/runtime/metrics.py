"""Prometheus metrics. Labels come from the config, never from a request."""

from __future__ import annotations

import os

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
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
SIGNING_RESULTS = ("ok", "unauthorized", "bad_request", "busy")
_DENY_REASONS = tuple(r for r in Reason if r not in (Reason.OK, Reason.UNSIGNED_ALLOWED))
_SOURCELESS_REASONS = (Reason.NON_CANONICAL, Reason.NO_SOURCE)


class Metrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.verifications = Counter(
            "signed_url_verifications",
            "Verify decisions by source, scheme, result (reason) and decision.",
            ["source", "scheme", "result", "decision"],
            registry=registry,
        )
        self.duration = Histogram(
            "signed_url_verification_duration_seconds",
            "Time to decide one verify request, inside the sidecar.",
            ["source"],
            buckets=DURATION_BUCKETS,
            registry=registry,
        )
        self.key_matches = Counter(
            "signed_url_key_matches",
            "Valid signatures by the key that matched (safe to retire a key at 0 rate).",
            ["source", "key"],
            registry=registry,
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
        self._decisions: dict[tuple[str, str, str, str], Counter] = {}
        self._durations: dict[str, Histogram] = {}
        self._keys: dict[tuple[str, str], Counter] = {}

    def exposition(self) -> bytes:
        """The text format of every sample, summed over all workers when there are several."""
        folder = os.environ.get(MULTIPROCESS_ENV)
        if not folder:
            return bytes(generate_latest(self.registry))
        merged = CollectorRegistry()
        MultiProcessCollector(merged, path=folder)  # type: ignore[no-untyped-call]
        return bytes(generate_latest(merged))

    def initialise(self, settings: Settings) -> None:
        """Create every series the config can produce, so dashboards show 0, not no data."""
        for reason in _SOURCELESS_REASONS:
            self.verifications.labels(NO_SOURCE, NO_SOURCE, reason, Outcome.DENY)
        self.duration.labels(NO_SOURCE)
        self.signing_requests.labels(NO_SOURCE, "unknown_team")
        for team in settings.teams:
            for result in SIGNING_RESULTS:
                self.signing_requests.labels(team.id, result)
        for source in settings.sources:
            self.duration.labels(source.name)
            for reason, outcome in _series(source):
                self.verifications.labels(source.name, source.scheme, reason, outcome)
            for key_id in source.verifier.key_ids if source.verifier else ():
                self.key_matches.labels(source.name, key_id)

    def record(self, decision: Decision, seconds: float) -> None:
        source = decision.source
        name = source.name if source else NO_SOURCE
        key = (name, source.scheme if source else NO_SOURCE, decision.reason, decision.outcome)
        counter = self._decisions.get(key)
        if counter is None:
            counter = self._decisions[key] = self.verifications.labels(*key)
        counter.inc()
        duration = self._durations.get(name)
        if duration is None:
            duration = self._durations[name] = self.duration.labels(name)
        duration.observe(seconds)
        if decision.key_id is not None:
            key_counter = self._keys.get((name, decision.key_id))
            if key_counter is None:
                key_counter = self.key_matches.labels(name, decision.key_id)
                self._keys[(name, decision.key_id)] = key_counter
            key_counter.inc()


def _series(source: SourceSettings) -> list[tuple[Reason, Outcome]]:
    if source.mode is Mode.OFF:
        return [(Reason.UNSIGNED_ALLOWED, Outcome.ALLOW), (Reason.METHOD, Outcome.DENY)]
    denied = Outcome.WOULD_DENY if source.mode is Mode.REPORT else Outcome.DENY
    # non_canonical happens inside a source too (a duplicated signature parameter).
    return [(Reason.OK, Outcome.ALLOW)] + [
        (r, denied) for r in _DENY_REASONS if r is not Reason.NO_SOURCE
    ]
