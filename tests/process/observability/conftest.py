"""Observability end to end: one run (``tests/support/observed_run.py``) shared by every
module of this folder.

The counters Prometheus scraped must equal exactly what was sent, per source and result
(``test_counters``); every dashboard query (``test_dashboard``) and every alert rule
(``test_alerts``) is evaluated by that Prometheus and must return series; no log line or
label leaks a token, API key or signature (``test_secrets``). The test that kills the
state store (``test_store_down``) runs after every other one here but the one that stops
the sidecar (``test_sidecar_down``), which runs last.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.observed_run import Run, observed_run

HERE = Path(__file__).parent
LAST = ("test_store_down.py", "test_sidecar_down.py")  # in this order, after the others


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Run the modules that break the shared run (``LAST``) after every other test of this
    folder, in that order, whatever order the files were named or given in."""
    ours = [index for index, item in enumerate(items) if item.path.parent == HERE]
    moved = sorted(
        (items[index] for index in ours),
        key=lambda item: LAST.index(item.path.name) + 1 if item.path.name in LAST else 0,
    )
    for index, item in zip(ours, moved, strict=True):
        items[index] = item


@pytest.fixture(scope="package")
def run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    with observed_run(tmp_path_factory.mktemp("observability")) as done:
        yield done
