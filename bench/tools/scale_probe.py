"""Measuring a sidecar process with many tenants: time to ready, memory, one scrape, and
scrapes running back to back (from another process, so the client's own work does not
share a GIL with the timings). Used by ``bench/scale.py`` and the scale tests."""

from __future__ import annotations

import multiprocessing
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from multiprocessing.synchronize import Event
from pathlib import Path

READY_TIMEOUT = 30.0


def start(config: Path, port: int, log: Path) -> tuple[subprocess.Popen[bytes], float]:
    """``sidecar serve`` on ``config`` (listening on ``port``), and the seconds from spawn to
    its first /healthz 200 (interpreter start, imports, config load, metrics set-up)."""
    started = time.perf_counter()
    with log.open("wb") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "sidecar", "serve", "-c", str(config)],
            stdout=output,
            stderr=subprocess.STDOUT,
            cwd=config.parent,  # not a checkout: the installed build, not the tree's sources
        )
    deadline = started + READY_TIMEOUT
    while not _healthy(port):
        if process.poll() is not None or time.perf_counter() > deadline:
            process.kill()
            raise RuntimeError(f"the sidecar did not become ready: see {log}")
        time.sleep(0.005)
    return process, time.perf_counter() - started


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for {pid}")


def scrape(port: int, *, gzipped: bool = False) -> tuple[float, bytes]:
    """One GET /metrics: seconds taken and the body as sent (``gzipped``: asked for gzip,
    as Prometheus does)."""
    started = time.perf_counter()
    request = urllib.request.Request(f"http://127.0.0.1:{port}/metrics")
    if gzipped:
        request.add_header("Accept-Encoding", "gzip")
    with urllib.request.urlopen(request, timeout=30) as answer:  # noqa: S310 (loopback)
        body = answer.read()
    return time.perf_counter() - started, bytes(body)


class ScrapeCount:
    """How many scrapes the scraping process has finished (shared memory)."""

    def __init__(self) -> None:
        self._shared = multiprocessing.Value("i", 0)

    def add_one(self) -> None:
        with self._shared.get_lock():
            self._shared.value += 1

    @property
    def value(self) -> int:
        return int(self._shared.value)


@contextmanager
def back_to_back_scrapes(port: int) -> Iterator[ScrapeCount]:
    """Scrapes one after another, from another process, while the block runs."""
    stop = multiprocessing.Event()
    count = ScrapeCount()
    scraper = multiprocessing.Process(target=_scrape_until, args=(port, stop, count), daemon=True)
    scraper.start()
    try:
        yield count
    finally:
        stop.set()
        scraper.join(timeout=30)


def _scrape_until(port: int, stop: Event, count: ScrapeCount) -> None:
    while not stop.is_set():
        scrape(port)
        count.add_one()


def _healthy(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1) as answer:
            return bool(answer.status == 200)
    except OSError:
        return False
