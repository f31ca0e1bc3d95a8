"""Prometheus metrics. Labels come from the config, never from a request.

Bounded for many tenants (docs/metrics.md): latency is a histogram per scheme (not per source,
which would be 16 series per tenant); with more than ``INITIALISED_SOURCES`` sources, a
source's verification series are created by its first request (not a zero for every
reason at start) and key-match series start at 0 only where a source holds several keys.
10,000 idle sources add nothing to a scrape; each source that sees traffic adds a few lines.
"""

from __future__ import annotations

import os

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    ProcessCollector,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.multiprocess import MultiProcessCollector

from sidecar import __version__
from sidecar.build import KIND
from sidecar.core.verdict import Reason
from sidecar.policy.decide import NO_SOURCE, Outcome
from sidecar.policy.settings import Mode, Settings, SourceSettings
from sidecar.runtime.tally import Counts, LocalTally, SharedTally
from sidecar.runtime.workers import MULTIPROCESS_ENV  # set by the supervisor: workers = N

SIGNING_RESULTS = ("ok", "unauthorized", "bad_request", "busy", "rate_limited", "no_state",
                   "unavailable")  # fmt: skip
_SOURCELESS_REASONS = (Reason.NON_CANONICAL, Reason.NO_SOURCE)
_DENY_REASONS = tuple(r for r in Reason if r not in (Reason.OK, Reason.UNSIGNED_ALLOWED))
# Up to this many sources, every source's series exist from the start (about 13 each);
# beyond, a source's series appear with its first request, so 10,000 idle tenants cost a
# scrape nothing.
INITIALISED_SOURCES = 100


class Metrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        # A *_created sample per counter would double the lines for nothing a dashboard reads.
        disable_created_metrics()  # type: ignore[no-untyped-call]
        self.registry = registry
        ProcessCollector(registry=registry)  # process_cpu_seconds_total, resident memory, fds
        # The verify decisions' families: plain integers in one process, the shared
        # files with several workers (see tally.py).
        folder = os.environ.get(MULTIPROCESS_ENV)
        self.decisions: LocalTally | SharedTally = SharedTally(folder) if folder else LocalTally()
        self.record = self.decisions.record
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
            ["version", "build"],
            registry=registry,
            multiprocess_mode="max",
        )
        build.labels(version=__version__, build=KIND).set(1)
        for result in ("success", "failure"):
            self.reloads.labels(result=result)

    def exposition(self) -> bytes:
        """The text format of every sample, summed over all workers when there are several
        (``process_*`` then describe the worker that answered)."""
        folder = os.environ.get(MULTIPROCESS_ENV)
        if not folder:
            return bytes(generate_latest(self.registry)) + self.decisions.text().encode()
        merged = CollectorRegistry()
        MultiProcessCollector(merged, path=folder)  # type: ignore[no-untyped-call]
        ProcessCollector(registry=merged)
        return bytes(generate_latest(merged))

    def snapshot(self) -> Counts:
        """The decisions and key matches as numbers, summed over all workers as
        ``exposition`` sums them (the console reads these, not the text)."""
        return self.decisions.snapshot()

    def initialise(self, settings: Settings) -> None:
        """Create the series dashboards need at 0, so they show 0 rather than no data and
        rate() counts a reason's first occurrence. Every source's, when the config has at
        most ``INITIALISED_SOURCES``; beyond, a bounded set: the source-less series, a
        histogram per scheme, and the keys of sources that hold several (a rotation)."""
        tally = self.decisions
        for reason in _SOURCELESS_REASONS:
            tally.ensure((NO_SOURCE, NO_SOURCE, reason, Outcome.DENY))
        for scheme in {NO_SOURCE} | {source.scheme for source in settings.sources}:
            tally.ensure_scheme(scheme)
        self.signing_requests.labels(NO_SOURCE, "unknown_team")
        for team in settings.teams:
            for result in SIGNING_RESULTS:
                self.signing_requests.labels(team.id, result)
        every_series = len(settings.sources) <= INITIALISED_SOURCES
        tracked = set()
        for source in settings.sources:
            for reason, outcome in _series(source) if every_series else ():
                tally.ensure((source.name, source.scheme, reason, outcome))
            if tracks_keys(settings, source):
                tracked.add(source.name)
                for key_id in source.signatures.key_ids if source.signatures else ():
                    tally.ensure_key((source.name, key_id))
        tally.tracked = None if every_series else frozenset(tracked)

    def forget_sources_except(self, settings: Settings) -> None:
        """After a reload, drop the series of sources the config no longer has (a tenant
        removed must not be exported for ever). In multiprocess mode the workers' files
        keep them until the workers restart: prometheus-client cannot remove those."""
        self.decisions.forget({source.name for source in settings.sources} | {NO_SOURCE})


def tracks_keys(settings: Settings, source: SourceSettings) -> bool:
    """Whether a source's keys have series of their own (matches, last match): with up to
    ``INITIALISED_SOURCES`` sources, always; beyond, for sources holding several keys (a
    rotation, where "this key matched nothing" is the question). A single key's matches
    are its source's ``ok`` decisions, so 10,000 single-key tenants add no key series."""
    return len(settings.sources) <= INITIALISED_SOURCES or (
        source.signatures is not None and len(source.signatures.key_ids) > 1
    )


def _series(source: SourceSettings) -> list[tuple[Reason, Outcome]]:
    if source.mode is Mode.OFF:
        return [(Reason.UNSIGNED_ALLOWED, Outcome.ALLOW), (Reason.METHOD, Outcome.DENY)]
    denied = Outcome.WOULD_DENY if source.mode is Mode.REPORT else Outcome.DENY
    # non_canonical happens inside a source too (a duplicated signature parameter).
    return [(Reason.OK, Outcome.ALLOW)] + [
        (r, denied) for r in _DENY_REASONS if r is not Reason.NO_SOURCE
    ]
