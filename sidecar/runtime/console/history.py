"""The last 15 minutes of the console's numbers: a ring of samples of the summed counts
(``numbers.Snapshot``), taken every ``INTERVAL`` seconds off the verify loop
(``sampler.py``), kept per source as the change since the sample before.

What a source keeps: its decisions, its rejections by reason (deny and would-deny), and
the matches of each of its keys that has series of its own. Each of these is one
``array('I')`` of ``CAPACITY`` counts (4 bytes a sample), made when it first counts and
dropped once a whole window has passed without a count: only sources with traffic in the
window cost memory (docs/console.md states the figure for 10,000 sources).

The first read is the baseline, not a sample: totals since start (with workers, of
every worker since theirs) are not the traffic of one interval. A total that went down (a
source removed and added again by reloads) counts 0 for that interval.
"""

from __future__ import annotations

import threading
from array import array
from dataclasses import dataclass, field

from sidecar.policy.decide import Outcome
from sidecar.runtime.console.numbers import Snapshot

INTERVAL = 5.0  # seconds between samples
CAPACITY = 180  # samples kept: 15 minutes
_LARGEST = 2**32 - 1  # what one slot holds (an array of 'I')

SeriesKey = tuple[str, ...]  # TOTAL, ("reason", result, decision), ("key", key id)
TOTAL: SeriesKey = ("total",)


@dataclass(slots=True)
class _Track:
    """One source's series, the number of the last sample each one counted in, and its
    decisions and rejections in the window (kept as they change: ranking is cheap)."""

    series: dict[SeriesKey, array[int]] = field(default_factory=dict)
    last: dict[SeriesKey, int] = field(default_factory=dict)
    decisions: int = 0
    rejected: int = 0

    def put(self, key: SeriesKey, slot: int, value: int) -> None:
        values = self.series[key]
        change = value - values[slot]
        values[slot] = value
        if key[0] == "total":
            self.decisions += change
        elif key[0] == "reason":
            self.rejected += change


@dataclass(frozen=True)
class SourceWindow:
    """One source's counts per sample over the window, oldest first, with the samples'
    times and lengths (seconds) alongside."""

    name: str
    times: tuple[float, ...]
    spans: tuple[float, ...]
    decisions: tuple[int, ...]
    reasons: dict[tuple[str, str], tuple[int, ...]]  # (result, decision): rejections
    keys: dict[str, tuple[int, ...]]

    def rejected(self) -> tuple[int, ...]:
        columns = zip(*self.reasons.values(), strict=True) if self.reasons else ()
        return tuple(map(sum, columns)) if self.reasons else (0,) * len(self.times)


class History:
    """The ring. ``add`` runs in the offload pool while pages may read: one lock."""

    def __init__(self, capacity: int = CAPACITY) -> None:
        self.capacity = capacity
        self.taken = 0  # samples taken so far (the next one's number)
        self._times = array("d", [0.0]) * capacity
        self._spans = array("d", [0.0]) * capacity
        self._previous: tuple[Snapshot, float] | None = None
        self._tracks: dict[str, _Track] = {}
        self._lock = threading.Lock()

    def add(self, snapshot: Snapshot, at: float) -> None:
        """One read of the summed counts, at wall-clock time ``at``."""
        with self._lock:
            previous, self._previous = self._previous, (snapshot, at)
            if previous is None:
                return
            number, slot = self.taken, self.taken % self.capacity
            self._times[slot], self._spans[slot] = at, max(0.0, at - previous[1])
            self.taken += 1
            changes = changes_between(previous[0], snapshot)
            self._start_series(changes, number)
            self._write(changes, number, slot)

    def _start_series(self, changes: dict[str, dict[SeriesKey, int]], number: int) -> None:
        for name, counted in changes.items():
            track = self._tracks.get(name) or self._tracks.setdefault(name, _Track())
            for key in counted:
                if key not in track.series:
                    track.series[key] = array("I", [0]) * self.capacity
                track.last[key] = number

    def _write(self, changes: dict[str, dict[SeriesKey, int]], number: int, slot: int) -> None:
        """This sample's count into every series kept (0 where it counted nothing), and
        drop what counted nothing for a whole window."""
        for name in list(self._tracks):
            track, counted = self._tracks[name], changes.get(name, {})
            for key in list(track.series):
                track.put(key, slot, min(counted.get(key, 0), _LARGEST))
                if number - track.last[key] >= self.capacity:  # all 0 now: forget it
                    del track.series[key], track.last[key]
            if not track.series:
                del self._tracks[name]

    def ranking(self) -> list[tuple[str, int, int]]:
        """(source, decisions, rejections) in the window of every source with traffic in
        it, most rejections first, then most decisions."""
        with self._lock:
            rows = [(name, track.decisions, track.rejected) for name, track in self._tracks.items()]
        return sorted(rows, key=lambda row: (-row[2], -row[1], row[0]))

    def window(self, name: str) -> SourceWindow:
        """A source's counts over the window (all 0 for a source without traffic)."""
        with self._lock:
            order = self._order()
            times = tuple(self._times[slot] for slot in order)
            spans = tuple(self._spans[slot] for slot in order)
            track = self._tracks.get(name, _Track())
            ordered = {key: tuple(values[slot] for slot in order)
                       for key, values in track.series.items()}  # fmt: skip
        zeros = (0,) * len(order)
        return SourceWindow(
            name, times, spans, ordered.get(TOTAL, zeros),
            {(key[1], key[2]): values for key, values in ordered.items() if key[0] == "reason"},
            {key[1]: values for key, values in ordered.items() if key[0] == "key"},
        )  # fmt: skip

    def _order(self) -> list[int]:
        """The slots of the samples in the window, oldest first."""
        kept = min(self.taken, self.capacity)
        return [(self.taken - kept + index) % self.capacity for index in range(kept)]


def changes_between(before: Snapshot, now: Snapshot) -> dict[str, dict[SeriesKey, int]]:
    """Per source, what counted between two reads: decisions, rejections by reason, and
    key matches (only what grew)."""
    changes: dict[str, dict[SeriesKey, int]] = {}
    for name, counts in now.sources.items():
        old = before.sources.get(name)
        counted: dict[SeriesKey, int] = {}
        _grew(counted, TOTAL, counts.total, old.total if old else 0.0)
        for (result, decision), value in counts.by_reason.items():
            if decision != Outcome.ALLOW:
                was = old.by_reason.get((result, decision), 0.0) if old else 0.0
                _grew(counted, ("reason", result, decision), value, was)
        if counted:
            changes[name] = counted
    for (name, key_id), value in now.key_matches.items():
        counted = changes.get(name) or {}
        _grew(counted, ("key", key_id), value, before.key_matches.get((name, key_id), 0.0))
        if counted:
            changes[name] = counted
    return changes


def _grew(counted: dict[SeriesKey, int], key: SeriesKey, now: float, before: float) -> None:
    if now > before:
        counted[key] = round(now - before)
