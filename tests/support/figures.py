"""Figures the fault, soak and fuzz tests report, printed at the end of the run.

A module of its own so that the test modules and conftest's summary hook share one dict
(conftest itself is imported by pytest under another module name).
"""

from __future__ import annotations

FIGURES: dict[str, int] = {}


def record(name: str, value: int) -> None:
    FIGURES[name] = FIGURES.get(name, 0) + value
