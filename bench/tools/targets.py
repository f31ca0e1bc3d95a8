"""The speed targets ``bench/README.md`` holds the sidecar to, read off one ``bench.py``
run: each is a ratio of two setups measured in the same interleaved rounds, so the
machine's speed cancels out."""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class Target:
    what: str
    setup: str
    against: str  # the setup it is measured against, in the same run
    figure: str  # "CPU µs" (the verifier's own CPU a request), "req/s" or "p99"
    bound: float
    at_most: bool  # the ratio must stay at or under the bound (else at or over it)

    def ratio(self, figures: dict[str, dict[str, float]]) -> float:
        ours, theirs = figures[self.figure].get(self.setup), figures[self.figure].get(self.against)
        return math.nan if ours is None or theirs is None or not theirs else ours / theirs

    def met(self, ratio: float) -> bool:
        return ratio <= self.bound if self.at_most else ratio >= self.bound


def report(targets: list[Target], figures: dict[str, dict[str, float]]) -> None:
    """One line per target whose two setups ran (``--only`` may leave some out)."""
    lines = []
    for target in targets:
        ratio = target.ratio(figures)
        if math.isnan(ratio):
            continue
        bound = f"{'<=' if target.at_most else '>='} {target.bound:g}"
        verdict = "met" if target.met(ratio) else "missed"
        lines.append(
            f"  {target.what:<44} {ratio:>5.2f} x {target.against} ({target.figure}); "
            f"target {bound}: {verdict}"
        )
    if lines:
        print("\nagainst the targets (bench/README.md), ratios from this run:")
        print("\n".join(lines))
