"""The console's numbers, from the process's counts (``Metrics.snapshot``): the same
numbers a scrape shows, taken as numbers rather than written as text and read back.

With ``workers = N`` the counts are every worker's summed, so whichever worker serves a
page shows the same totals. Rates are differences of totals between two reads (the page's
script computes them), never kept here: a worker keeps no history.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sidecar.policy.decide import Outcome
from sidecar.runtime.tally import Counts


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


def read(counts: Counts) -> Snapshot:
    """The console's totals from the process's counts."""
    snapshot = Snapshot(
        key_matches=dict(counts.key_matches), key_last_match=dict(counts.key_last_match)
    )
    for (source, _scheme, result, decision), value in counts.verifications.items():
        _add_decision(snapshot, source, result, decision, value)
    return snapshot


def _add_decision(
    snapshot: Snapshot, source: str, result: str, decision: str, value: float
) -> None:
    counts = snapshot.sources.setdefault(source, SourceCounts())
    counts.total += value
    if decision == Outcome.DENY:
        counts.denied += value
    elif decision == Outcome.WOULD_DENY:
        counts.would_deny += value
    reason = (result, decision)
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
