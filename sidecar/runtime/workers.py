"""``workers = N``: N ``sidecar serve`` processes sharing the ports (SO_REUSEPORT).

Metrics stay exact across processes with prometheus-client's multiprocess mode: each
worker writes its samples to memory-mapped files in a private folder, and whichever worker
Prometheus reaches sums every file. The supervisor only starts, restarts and signals the
workers: SIGHUP is passed on (each worker reloads), SIGTERM/SIGINT stop them gracefully.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from types import FrameType

from prometheus_client import multiprocess

from sidecar.policy.settings import Settings
from sidecar.runtime.logs import JsonLog
from sidecar.runtime.metrics import MULTIPROCESS_ENV

RESTART_DELAY = 0.5
STOP_TIMEOUT = 10.0


def supervise(settings: Settings, log: JsonLog) -> None:
    folder = tempfile.mkdtemp(prefix="signed-url-metrics-")
    env = {**os.environ, MULTIPROCESS_ENV: folder}
    command = [sys.executable, "-m", "sidecar", "serve", "-c", settings.path, "--worker"]
    count = settings.server.workers
    children = [_spawn(command, env) for _ in range(count)]
    stopping = False

    def forward(signum: int, _frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = stopping or signum != signal.SIGHUP
        for child in children:
            if child.poll() is None:
                child.send_signal(signal.SIGTERM if stopping else signum)

    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, forward)
    log.event("supervisor_start", workers=count, pids=[child.pid for child in children])
    try:
        while not stopping:
            time.sleep(RESTART_DELAY)
            for index, child in enumerate(children):
                if child.poll() is not None and not stopping:
                    log.event("worker_exit", pid=child.pid, code=child.returncode)
                    multiprocess.mark_process_dead(child.pid, folder)  # type: ignore[no-untyped-call]
                    children[index] = _spawn(command, env)
        _wait(children)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    log.event("supervisor_stopped")


def _spawn(command: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(command, env=env)  # noqa: S603 (our own interpreter and module)


def _wait(children: list[subprocess.Popen[bytes]]) -> None:
    deadline = time.monotonic() + STOP_TIMEOUT
    for child in children:
        try:
            child.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
