"""The observability run every module of tests/process/observability reads: a known mix
of requests goes through nginx, straight to ``/verify`` and to the signing API; then the
config file is swapped for a broken one (refused, the old config keeps serving), restored,
and reloaded by SIGHUP; a real Prometheus scrapes it all.

The sidecar runs with ``workers = 2`` behind the real nginx, with ``[state]`` on a real
redis-server (one URL is revoked, then refused), scraped by a real Prometheus that loads
the shipped alert rules.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from prometheus_client import CollectorRegistry
from prometheus_client.multiprocess import MultiProcessCollector

from sidecar import config
from sidecar.devtools.local_stack import LocalStack
from sidecar.policy.revoking import revoke_url
from sidecar.runtime.stores import open_store
from tests.support.logs import log_events, wait_for_events
from tests.support.observed_traffic import (
    BOOKS_OK,
    CONFIG,
    NEW_TOKEN,
    VERIFICATIONS,
    Ask,
    Traffic,
    broken,
    direct,
    md5,
    send_traffic,
)
from tests.support.prometheus import JOB, Prometheus
from tests.support.redis_server import RedisServer, running_redis
from tests.support.requests import verify
from tests.support.stacks import running_stack
from tests.support.tokens import md5_signed


@dataclass
class Run:
    stack: LocalStack
    prometheus: Prometheus
    redis: RedisServer
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


async def revoke(stack: LocalStack, uri: str) -> None:
    """The revocation ``sidecar revoke -c FILE URL`` writes, written from this process
    without the change-feed listener ``open()`` starts: the run needs the write alone."""
    settings = config.load(stack.config_path)
    assert settings.state is not None
    store = open_store(settings.state)
    try:
        await store.revoke(revoke_url(settings, uri, now=time.time()))
    finally:
        await store.close()


def revoke_and_refuse(stack: LocalStack, traffic: Traffic) -> None:
    """Revoke one allowed URL; then ask until six answers in a row (fresh
    connections: both workers answer some) are ``revoked``, each one counted as answered.
    Every worker's sync reads the store at least every second (SPEC: within 1 s)."""
    uri = md5_signed("/books/x.png?leaked=1", NEW_TOKEN)
    direct(stack, traffic, Ask(uri, 200, BOOKS_OK, "2026-11"))
    asyncio.run(revoke(stack, uri))
    deadline, in_a_row = time.monotonic() + 3.0, 0
    while in_a_row < 6:
        assert time.monotonic() < deadline, "a worker still allows the revoked URL"
        reply = verify(stack, uri)
        if reply.headers["x-signature-result"] == "revoked":
            assert reply.status == 401
            traffic.record(uri, md5("books", "revoked"), None)
            in_a_row += 1
        else:
            assert (reply.status, reply.headers["x-signature-result"]) == (200, "ok")
            traffic.record(uri, BOOKS_OK, "2026-11")
            in_a_row = 0
        traffic.direct += 1


@contextmanager
def observed_run(folder: Path) -> Iterator[Run]:
    """The whole run, done: every request sent, both reloads counted, and a scrape taken
    after the last of them. Stopped on exit."""
    started_at = time.time()
    with (
        running_redis(folder / "redis") as redis,
        running_stack(folder / "stack", f'{CONFIG}\n[state]\nurl = "{redis.url}"\n') as stack,
    ):
        wait_for_events(stack, "start", 2)  # both workers listen before any request
        prometheus = Prometheus(folder / "prometheus", stack.metrics_port)
        try:
            prometheus.until(lambda: prometheus.query(f'up{{job="{JOB}"}} == 1'))
            traffic = send_traffic(stack)
            revoke_and_refuse(stack, traffic)
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
            yield Run(stack, prometheus, redis, traffic, per_worker, good_reload_at, started_at)
        finally:
            prometheus.stop()
