"""The console's numbers, read from the process's own metrics exposition.

With ``workers = N`` the exposition sums every worker's samples, so whichever worker
serves a page shows the same totals. Rates are differences of totals between two reads
(the page's script computes them), never kept here: a worker keeps no history.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from sidecar.policy.decide import Outcome

VERIFICATIONS = "signed_url_verifications_total"
KEY_MATCHES = "signed_url_key_matches_total"
KEY_LAST_MATCH = "signed_url_key_last_match_timestamp_seconds"
_WANTED = (VERIFICATIONS + "{", KEY_MATCHES + "{", KEY_LAST_MATCH + "{")
_LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


@dataclass
class SourceCounts:
    """One source's decisions since start: all, denied, would-deny, and by reason."""

    total: float = 0.0
    denied: float = 0.0
    would_deny: float = 0.0
    by_reason: dict[tuple[str, str], float] = field(default_factory=dict)  # (result, decision)


@dataclass
class Snapshot:
    sources: dict[str, SourceCounts] = field(default_factory=dict)
    key_matches: dict[tuple[str, str], float] = field(default_factory=dict)  # (source, key)
    key_last_match: dict[tuple[str, str], float] = field(default_factory=dict)

    def counts(self, source: str) -> SourceCounts:
        """A source without series (it has seen no request yet) counts 0."""
        return self.sources.get(source) or SourceCounts()

    def as_json(self) -> dict[str, Any]:
        """What the live page polls: every source that has seen a request."""
        return {
            name: {
                "total": counts.total,
                "denied": counts.denied,
                "would_deny": counts.would_deny,
                "reasons": [[r, d, n] for (r, d), n in sorted(counts.by_reason.items()) if n],
            }
            for name, counts in sorted(self.sources.items())
            if counts.total
        }


def read(text: str) -> Snapshot:
    """The console's totals from the Prometheus text format."""
    snapshot = Snapshot()
    for name, labels, value in _samples(text):
        if name == VERIFICATIONS:
            _add_decision(snapshot, labels, value)
        elif name == KEY_MATCHES:
            key = (labels.get("source", ""), labels.get("key", ""))
            snapshot.key_matches[key] = snapshot.key_matches.get(key, 0.0) + value
        elif name == KEY_LAST_MATCH and value > 0:
            # Per-worker series (a ``pid`` label) when the gauge is not merged: the newest.
            key = (labels.get("source", ""), labels.get("key", ""))
            snapshot.key_last_match[key] = max(value, snapshot.key_last_match.get(key, 0))
    return snapshot


def _samples(text: str) -> Iterator[tuple[str, dict[str, str], float]]:
    """The samples of the three families the console shows. A line-by-line reader for
    this known shape: prometheus-client's general parser spends about 60 µs a line, which
    with 10,000 tenants' series is half a second of the GIL every refresh."""
    for line in text.splitlines():
        if not line.startswith(_WANTED):
            continue
        name, _, rest = line.partition("{")
        labels, _, value = rest.rpartition("} ")
        yield name, dict(_LABEL.findall(labels)), float(value.split(" ", 1)[0])


def _add_decision(snapshot: Snapshot, labels: dict[str, str], value: float) -> None:
    counts = snapshot.sources.setdefault(labels.get("source", ""), SourceCounts())
    decision = labels.get("decision", "")
    counts.total += value
    if decision == Outcome.DENY:
        counts.denied += value
    elif decision == Outcome.WOULD_DENY:
        counts.would_deny += value
    reason = (labels.get("result", ""), decision)
    counts.by_reason[reason] = counts.by_reason.get(reason, 0.0) + value


def rejected(counts: SourceCounts) -> float:
    return counts.denied + counts.would_deny


def would_deny_rows(snapshot: Snapshot) -> list[tuple[str, str, float]]:
    """(source, reason, count) of every request report mode let through but enforce
    would have denied, most first."""
    rows = [
        (source, reason, value)
        for source, counts in snapshot.sources.items()
        for (reason, decision), value in counts.by_reason.items()
        if decision == Outcome.WOULD_DENY and value
    ]
    return sorted(rows, key=lambda row: (-row[2], row[0], row[1]))
