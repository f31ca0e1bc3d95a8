"""The metrics of verify decisions, kept the cheapest correct way: counts by source,
scheme, result and decision; key matches and when each key last matched; latency by scheme.

``LocalTally`` (one process): plain integers in dictionaries, written in the text format
here. A prometheus-client child takes a lock on every ``inc()`` (about a microsecond with
the histogram's bucket search); the verify loop is the only writer, so no lock is needed,
and a scrape copies each dictionary (one C-level operation) before it reads.
``SharedTally`` (``workers = N``): prometheus-client's children, which write to the
memory-mapped files that every worker's scrape sums.

``snapshot()`` gives the counts and last matches as numbers (``Counts``), summed over every
worker like a scrape, for the console: no text is written and read back.

Label values come from the config (names are letters, digits, '_', '.', '-') and from the
fixed vocabularies: nothing to escape.
"""

from __future__ import annotations

import time
from bisect import bisect_left
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from prometheus_client import Counter, Gauge, Histogram
from prometheus_client.multiprocess import MultiProcessCollector

from sidecar.core.verdict import Reason
from sidecar.policy.decide import NO_SOURCE, Decision, Outcome

VERIFICATIONS = "signed_url_verifications"
KEY_MATCHES = "signed_url_key_matches"
KEY_LAST_MATCH = "signed_url_key_last_match_timestamp_seconds"
DURATION = "signed_url_verification_duration_seconds"
HELP = {
    VERIFICATIONS: "Verify decisions by source, scheme, result (reason) and decision.",
    KEY_MATCHES: "Valid signatures by the key that matched (safe to retire a key at 0 rate).",
    KEY_LAST_MATCH: "Unix time (to the second) a key last verified a signature.",
    DURATION: "Time to decide one verify request, inside the sidecar, by scheme.",
}
# From 10 µs (a cached MD5 check) to 100 ms (something is badly wrong). Not Final: mypyc
# folds a Final tuple of literals away and the module-level list below then finds no value.
DURATION_BUCKETS = (
    0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005,
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
)  # fmt: skip
_LE = [repr(bound) for bound in DURATION_BUCKETS] + ["+Inf"]
_BOUNDS: Final[list[float]] = list(DURATION_BUCKETS)  # a C static once compiled

Labels = tuple[str, str, Reason, Outcome]  # source, scheme, result, decision
KeyLabels = tuple[str, str]  # source, key
DecisionLabels = tuple[str, str, str, str]  # source, scheme, result, decision: as exported


@dataclass
class Counts:
    """What a scrape shows of the decisions and key matches, as numbers (every worker's
    summed; the newest last match of any)."""

    verifications: dict[DecisionLabels, float] = field(default_factory=dict)
    key_matches: dict[KeyLabels, float] = field(default_factory=dict)
    key_last_match: dict[KeyLabels, float] = field(default_factory=dict)  # matched keys only


def labels_of(decision: Decision) -> tuple[Labels, str]:
    """The decision's label set, and its scheme."""
    source = decision.source
    name, scheme = (source.name, source.scheme) if source else (NO_SOURCE, NO_SOURCE)
    return (name, scheme, decision.reason, decision.outcome), scheme


class LocalTally:
    def __init__(self) -> None:
        # Sources whose keys have series of their own (None: every source; see
        # metrics.tracks_keys). Replaced whole on reload.
        self.tracked: frozenset[str] | None = None
        self.counts: dict[Labels, int] = {}
        self.key_counts: dict[KeyLabels, int] = {}
        self.last_match: dict[KeyLabels, int] = {}
        self.buckets: dict[str, list[int]] = {}  # per scheme: one count per bucket, +Inf last
        self.sums: dict[str, float] = {}
        self._texts: dict[Labels | KeyLabels, str] = {}  # label sets as written, made once

    def record(self, decision: Decision, seconds: float) -> None:
        source = decision.source
        if source is not None:  # not labels_of: no tuple of two built on every request
            name, scheme = source.name, source.scheme
        else:
            name = scheme = NO_SOURCE
        labels = (name, scheme, decision.reason, decision.outcome)
        counts = self.counts
        counts[labels] = counts.get(labels, 0) + 1
        buckets = self.buckets.get(scheme) or self.ensure_scheme(scheme)
        buckets[bisect_left(_BOUNDS, seconds)] += 1  # le: bound >= seconds
        self.sums[scheme] += seconds
        tracked, key_id = self.tracked, decision.key_id
        if key_id is not None and (tracked is None or name in tracked):
            key = (name, key_id)
            self.key_counts[key] = self.key_counts.get(key, 0) + 1
            self.last_match[key] = int(time.time())

    def ensure(self, labels: Labels) -> None:
        self.counts.setdefault(labels, 0)

    def ensure_key(self, key: KeyLabels) -> None:
        self.key_counts.setdefault(key, 0)

    def ensure_scheme(self, scheme: str) -> list[int]:
        self.sums.setdefault(scheme, 0.0)
        return self.buckets.setdefault(scheme, [0] * (len(DURATION_BUCKETS) + 1))

    def forget(self, kept: set[str]) -> None:
        """Drop the series of sources not in ``kept``."""
        for labels in [labels for labels in self.counts.copy() if labels[0] not in kept]:
            self.counts.pop(labels, None)
        for key in [key for key in self.key_counts.copy() if key[0] not in kept]:
            self.key_counts.pop(key, None)
            self.last_match.pop(key, None)

    def snapshot(self) -> Counts:
        # Copies first (one C-level step each): the verify loop may write meanwhile.
        counts, key_counts = self.counts.copy(), self.key_counts.copy()
        last_match = self.last_match.copy()
        return Counts(
            {(s, scheme, r.value, o.value): float(n) for (s, scheme, r, o), n in counts.items()},
            {key: float(n) for key, n in key_counts.items()},
            {key: float(second) for key, second in last_match.items()},
        )

    def text(self) -> str:
        counts, key_counts = self.counts.copy(), self.key_counts.copy()
        last_match, sums = self.last_match.copy(), self.sums.copy()
        buckets = [(scheme, list(counted)) for scheme, counted in self.buckets.copy().items()]
        lines = [_header(VERIFICATIONS + "_total", VERIFICATIONS, "counter")]
        lines += [f"{VERIFICATIONS}_total{self._text(k)} {v}.0\n" for k, v in counts.items()]
        lines.append(_header(KEY_MATCHES + "_total", KEY_MATCHES, "counter"))
        lines += [f"{KEY_MATCHES}_total{self._text(k)} {v}.0\n" for k, v in key_counts.items()]
        lines.append(_header(KEY_LAST_MATCH, KEY_LAST_MATCH, "gauge"))
        lines += [f"{KEY_LAST_MATCH}{self._text(k)} {v}.0\n" for k, v in last_match.items()]
        lines.append(_header(DURATION, DURATION, "histogram"))
        for scheme, counted in buckets:
            lines += _histogram_lines(scheme, counted, sums.get(scheme, 0.0))
        return "".join(lines)

    def _text(self, labels: Labels | KeyLabels) -> str:
        text = self._texts.get(labels)
        if text is None:
            if len(labels) == 4:
                source, scheme, reason, outcome = labels
                text = (
                    f'{{decision="{outcome.value}",result="{reason.value}",'
                    f'scheme="{scheme}",source="{source}"}}'
                )
            else:
                text = f'{{key="{labels[1]}",source="{labels[0]}"}}'
            self._texts[labels] = text
        return text


class SharedTally:
    """prometheus-client's children, for multiprocess mode (its collector renders them
    from the workers' files in ``folder``)."""

    def __init__(self, folder: str) -> None:
        self.folder = folder
        self.verifications = Counter(
            VERIFICATIONS,
            HELP[VERIFICATIONS],
            ["source", "scheme", "result", "decision"],
            registry=None,
        )
        self.key_matches = Counter(KEY_MATCHES, HELP[KEY_MATCHES], ["source", "key"], registry=None)
        self.key_last_match = Gauge(
            KEY_LAST_MATCH,
            HELP[KEY_LAST_MATCH],
            ["source", "key"],
            registry=None,
            multiprocess_mode="max",
        )
        self.duration = Histogram(DURATION, HELP[DURATION], ["scheme"],
                                  buckets=DURATION_BUCKETS, registry=None)  # fmt: skip
        self.tracked: frozenset[str] | None = None  # as LocalTally's
        # Label lookups cost microseconds: children are cached per label set (bounded:
        # labels come from the config's sources and the fixed vocabularies).
        self._counters: dict[Labels, Counter] = {}
        self._durations: dict[str, Histogram] = {}
        self._keys: dict[KeyLabels, tuple[Counter, Gauge]] = {}
        self._last_match: dict[KeyLabels, int] = {}

    def record(self, decision: Decision, seconds: float) -> None:
        labels, scheme = labels_of(decision)
        counter = self._counters.get(labels)
        if counter is None:
            counter = self._counters[labels] = self.verifications.labels(*labels)
        counter.inc()
        duration = self._durations.get(scheme) or self.ensure_scheme(scheme)
        duration.observe(seconds)
        tracked = self.tracked
        if decision.key_id is not None and (tracked is None or labels[0] in tracked):
            key = (labels[0], decision.key_id)
            children = self._keys.get(key) or self._key_children(key)
            children[0].inc()
            second = int(time.time())
            if self._last_match.get(key) != second:  # a file write at most once a second
                self._last_match[key] = second
                children[1].set(second)

    def ensure(self, labels: Labels) -> None:
        if labels not in self._counters:
            self._counters[labels] = self.verifications.labels(*labels)

    def ensure_key(self, key: KeyLabels) -> None:
        if key not in self._keys:
            self.key_matches.labels(*key)  # the gauge stays unwritten until a match

    def ensure_scheme(self, scheme: str) -> Histogram:
        duration = self._durations[scheme] = self.duration.labels(scheme)
        return duration

    def forget(self, kept: set[str]) -> None:
        """Nothing: prometheus-client cannot remove a series from the workers' files; the
        series of removed sources go when the workers restart."""

    def text(self) -> str:
        return ""  # the multiprocess collector writes these families from the files

    def snapshot(self) -> Counts:
        """Every worker's counts, merged from their files as a scrape merges them; only
        the counter and max-gauge files (not the histograms', which the console never
        shows)."""
        files = sorted(map(str, Path(self.folder).glob("counter_*.db")))
        files += sorted(map(str, Path(self.folder).glob("gauge_max_*.db")))
        merged = MultiProcessCollector.merge(files, accumulate=True)  # type: ignore[no-untyped-call]
        counts = Counts()
        for family in merged:
            for sample in family.samples:
                _take(counts, sample.name, sample.labels, sample.value)
        return counts

    def _key_children(self, key: KeyLabels) -> tuple[Counter, Gauge]:
        children = self._keys[key] = (
            self.key_matches.labels(*key),
            self.key_last_match.labels(*key),
        )
        return children


def _take(counts: Counts, name: str, labels: dict[str, str], value: float) -> None:
    """One merged sample into ``counts``, when it is one of theirs."""
    if name == VERIFICATIONS + "_total":
        key = (labels["source"], labels["scheme"], labels["result"], labels["decision"])
        counts.verifications[key] = value
    elif name == KEY_MATCHES + "_total":
        counts.key_matches[labels["source"], labels["key"]] = value
    elif name == KEY_LAST_MATCH and value > 0:  # 0: created, never matched
        counts.key_last_match[labels["source"], labels["key"]] = value


def _header(sample: str, family: str, kind: str) -> str:
    return f"# HELP {sample} {HELP[family]}\n# TYPE {sample} {kind}\n"


def _histogram_lines(scheme: str, counted: list[int], total: float) -> Iterable[str]:
    cumulative = 0
    for le, count in zip(_LE, counted, strict=True):
        cumulative += count
        yield f'{DURATION}_bucket{{le="{le}",scheme="{scheme}"}} {cumulative}.0\n'
    yield f'{DURATION}_count{{scheme="{scheme}"}} {cumulative}.0\n'
    yield f'{DURATION}_sum{{scheme="{scheme}"}} {total!r}\n'
