"""Observability end to end: one run shared by every module of this folder.

A known mix of requests goes through nginx, straight to ``/verify`` and to the signing API;
then the config file is swapped for a broken one (refused, the old config keeps serving),
restored, and reloaded by SIGHUP. The counters Prometheus scraped must equal exactly what was
sent, per source and result (``test_counters``); every dashboard query (``test_dashboard``)
and every alert rule (``test_alerts``) is evaluated by that Prometheus and must return
series; no log line or label leaks a token, API key or signature (``test_secrets``). The
test that stops the sidecar (``test_sidecar_down``) runs after every other one here.
"""

from __future__ import annotations

import os
import shutil
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.multiprocess import MultiProcessCollector

from sidecar.devtools.local_stack import LocalStack
from tests.conftest import md5_signed, running_stack
from tests.process.observability._support import (
    CONFIG,
    JOB,
    NEW_TOKEN,
    VERIFICATIONS,
    Prometheus,
    broken,
    log_events,
    wait_for_events,
)
from tests.process.observability._traffic import BOOKS_OK, Ask, Traffic, direct, send_traffic

HERE = Path(__file__).parent
STOPS_THE_SIDECAR = "test_sidecar_down.py"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Run the module that stops the shared sidecar after every other test of this folder,
    whatever order the files were named or given in."""
    ours = [index for index, item in enumerate(items) if item.path.parent == HERE]
    moved = sorted(
        (items[index] for index in ours),
        key=lambda item: item.path.name == STOPS_THE_SIDECAR,
    )
    for index, item in zip(ours, moved, strict=True):
        items[index] = item


@dataclass
class Run:
    stack: LocalStack
    prometheus: Prometheus
    traffic: Traffic
    per_worker: dict[int, float]
    good_reload_at: float
    started_at: float


def replace_config(stack: LocalStack, text: str, event: str) -> None:
    """Swap the config file atomically (a new inode, as a Secret update does) and wait for
    each worker's file watcher to reload it."""
    seen = sum(e["event"] == event for e in log_events(stack))
    swap = stack.config_path.with_suffix(".swap")
    swap.write_text(text)
    swap.replace(stack.config_path)
    wait_for_events(stack, event, seen + 2)


def send_sighup(stack: LocalStack) -> None:
    assert stack.sidecar is not None
    seen = sum(e["event"] == "reload" for e in log_events(stack))
    os.kill(stack.sidecar.pid, signal.SIGHUP)  # the supervisor passes it to each worker
    wait_for_events(stack, "reload", seen + 2)


def per_worker_verifications(stack: LocalStack) -> dict[int, float]:
    """Each worker's own counter file, summed alone: proof of who served what."""
    start = next(e for e in log_events(stack) if e["event"] == "supervisor_start")
    environ = Path(f"/proc/{start['pids'][0]}/environ").read_bytes().split(b"\0")
    prefix = b"PROMETHEUS_MULTIPROC_DIR="
    folder = Path(next(v for v in environ if v.startswith(prefix))[len(prefix) :].decode())
    counts = {}
    for pid in start["pids"]:
        alone = stack.folder / f"worker-{pid}"
        alone.mkdir()
        shutil.copy(folder / f"counter_{pid}.db", alone)
        registry = CollectorRegistry()
        MultiProcessCollector(registry, path=str(alone))  # type: ignore[no-untyped-call]
        counts[pid] = sum(
            s.value for m in registry.collect() for s in m.samples if s.name == VERIFICATIONS
        )
    return counts


@pytest.fixture(scope="package")
def run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    folder = tmp_path_factory.mktemp("observability")
    started_at = time.time()
    with running_stack(folder / "stack", CONFIG) as stack:
        wait_for_events(stack, "start", 2)  # both workers listen before any request
        prometheus = Prometheus(folder / "prometheus", stack.metrics_port)
        try:
            prometheus.until(lambda: prometheus.query(f'up{{job="{JOB}"}} == 1'))
            traffic = send_traffic(stack)
            good = stack.config_path.read_text()  # as rendered, with this stack's ports
            replace_config(stack, broken(good), "reload_failed")
            # The refused config left the old one serving.
            after = md5_signed("/books/x.png?after=1", NEW_TOKEN)
            direct(stack, traffic, Ask(after, 200, BOOKS_OK, "2026-11"))
            replace_config(stack, good, "reload")
            good_reload_at = time.time()
            send_sighup(stack)  # an unchanged file reloads on request too
            per_worker = per_worker_verifications(stack)
            done = time.time()
            # Every series' newest sample comes from a scrape that began after the last event.
            scraped = f'min(timestamp({VERIFICATIONS}{{job="{JOB}"}})) > {done}'
            prometheus.until(lambda: prometheus.query(scraped))
            yield Run(stack, prometheus, traffic, per_worker, good_reload_at, started_at)
        finally:
            prometheus.stop()
