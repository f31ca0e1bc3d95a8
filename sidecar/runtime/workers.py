"""``workers = N``: N ``sidecar serve`` processes sharing the ports (SO_REUSEPORT).

Metrics stay exact across processes with prometheus-client's multiprocess mode: each
worker writes its samples to memory-mapped files in a private folder, and whichever worker
Prometheus reaches sums every file. The supervisor starts, restarts and signals the
workers: SIGHUP is passed on (each worker reloads), SIGTERM/SIGINT stop them gracefully.

A worker that exits is restarted after a delay that doubles with each recent restart of
its slot (``BACKOFF_FIRST`` up to ``BACKOFF_CAP``). A slot restarted ``RESTART_LIMIT``
times within ``RESTART_WINDOW`` is not going to recover by itself (a port held by another
program, a broken install): the supervisor logs why, stops the other workers and exits
non-zero, so systemd or Kubernetes sees the failure instead of a silent crash loop.
Every exit and restart is one JSON line and counted in ``signed_url_worker_restarts_total``,
which the supervisor writes into the workers' metrics folder.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import deque
from dataclasses import dataclass, field
from types import FrameType
from typing import Any

from sidecar.policy.settings import Settings
from sidecar.runtime.logs import JsonLog

MULTIPROCESS_ENV = "PROMETHEUS_MULTIPROC_DIR"  # the name prometheus_client reads
BACKOFF_FIRST = 0.25  # seconds before the first restart of a slot
BACKOFF_CAP = 8.0  # the longest wait between two restarts
RESTART_LIMIT = 5  # restarts of one slot within RESTART_WINDOW before giving up
RESTART_WINDOW = 60.0
POLL_INTERVAL = 0.1  # how often the supervisor looks at its children
STOP_TIMEOUT = 10.0
EXIT_GAVE_UP = 1


def prepare_metrics_folder() -> str:
    """Make the private metrics folder and name it in the environment. Called before
    prometheus_client is first imported: the library picks its multiprocess value class
    at import, so the supervisor's own counter then lands in the folder the workers sum."""
    if "prometheus_client" in sys.modules:
        raise RuntimeError("prometheus_client was imported before the metrics folder was set")
    folder = tempfile.mkdtemp(prefix="signed-url-metrics-")
    # Always a fresh folder of our own (removed at exit): files left by an earlier run, or
    # a folder named in the environment by someone else, would be summed into this one.
    os.environ[MULTIPROCESS_ENV] = _PREPARED[0] = folder
    return folder


_PREPARED = [""]  # the folder prepare_metrics_folder made in this process


@dataclass
class _Slot:
    """One worker position: its process, and when it was last restarted."""

    process: subprocess.Popen[bytes] | None
    restarts: deque[float] = field(default_factory=deque)  # monotonic times, recent only
    restart_at: float | None = None  # a restart is scheduled for this time

    def recent(self, now: float) -> int:
        while self.restarts and now - self.restarts[0] > RESTART_WINDOW:
            self.restarts.popleft()
        return len(self.restarts)


def backoff(recent_restarts: int) -> float:
    """The wait before the next restart of a slot restarted ``recent_restarts`` times."""
    return float(min(BACKOFF_CAP, BACKOFF_FIRST * 2**recent_restarts))


def supervise(settings: Settings, log: JsonLog) -> None:
    folder = _PREPARED[0] or prepare_metrics_folder()
    try:
        supervisor = _Supervisor(settings, log, folder)
        gave_up = supervisor.run()
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    log.event("supervisor_stopped")
    if gave_up:
        raise SystemExit(EXIT_GAVE_UP)


class _Supervisor:
    def __init__(self, settings: Settings, log: JsonLog, folder: str) -> None:
        self.log, self.folder = log, folder
        self.restarts_total = _restart_counter()
        self.command = [sys.executable, "-m", "sidecar", "serve", "-c", settings.path,
                        "--worker", "--log-level", log.level]  # fmt: skip
        self.env = {**os.environ, MULTIPROCESS_ENV: folder}
        self.slots = [_Slot(self._spawn()) for _ in range(settings.server.workers)]
        self.stopping = False

    def run(self) -> bool:
        """Tend the workers until told to stop (False) or giving up (True)."""
        for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(signum, self._forward)
        pids = [slot.process.pid for slot in self.slots if slot.process is not None]
        self.log.event(
            "supervisor_start", workers=len(self.slots), pids=pids, metrics_folder=self.folder
        )
        gave_up = False
        while not self.stopping and not gave_up:
            time.sleep(POLL_INTERVAL)
            for index, slot in enumerate(self.slots):
                if self.stopping or not self._tend(slot, index):
                    gave_up = not self.stopping
                    break
        _stop(self.slots)
        return gave_up

    def _forward(self, signum: int, _frame: FrameType | None) -> None:
        self.stopping = self.stopping or signum != signal.SIGHUP
        for slot in self.slots:
            if slot.process is not None and slot.process.poll() is None:
                slot.process.send_signal(signal.SIGTERM if self.stopping else signum)

    def _tend(self, slot: _Slot, index: int) -> bool:
        """Notice an exit and schedule its restart, or restart when due. False: give up."""
        now = time.monotonic()
        process = slot.process
        if process is not None and process.poll() is not None:
            return self._exited(slot, index, process, now)
        if process is None and slot.restart_at is not None and now >= slot.restart_at:
            slot.restarts.append(now)
            slot.process, slot.restart_at = self._spawn(), None
            self.restarts_total.inc()
            self.log.event(
                "worker_restart", slot=index, pid=slot.process.pid, restarts=len(slot.restarts)
            )
        return True

    def _exited(
        self, slot: _Slot, index: int, process: subprocess.Popen[bytes], now: float
    ) -> bool:
        from prometheus_client import multiprocess  # noqa: PLC0415 (after the folder is set)

        multiprocess.mark_process_dead(process.pid, self.folder)  # type: ignore[no-untyped-call]
        recent = slot.recent(now)
        code = process.returncode
        exit_fields = {"slot": index, "pid": process.pid, **_exit_cause(code), "restarts": recent}
        if recent >= RESTART_LIMIT:
            self.log.event("worker_exit", **exit_fields, next_delay=None)
            self.log.event(
                "supervisor_giving_up",
                slot=index,
                restarts=recent,
                window_seconds=RESTART_WINDOW,
                reason=f"worker slot {index} exited {recent + 1} times within "
                f"{RESTART_WINDOW:g} s (last: {_describe(code)}); stopping every worker",
            )
            return False
        delay = backoff(recent)
        self.log.event("worker_exit", **exit_fields, next_delay=delay)
        slot.process, slot.restart_at = None, now + delay
        return True

    def _spawn(self) -> subprocess.Popen[bytes]:
        # Our own interpreter and module, never a shell.
        return subprocess.Popen(self.command, env=self.env)  # noqa: S603


def _restart_counter() -> Any:
    from prometheus_client import Counter  # noqa: PLC0415 (after the folder is set)

    # No registry: in multiprocess mode the value is written to this process's file in the
    # folder, and every worker's /metrics sums it with their own.
    return Counter(
        "signed_url_worker_restarts",
        "Worker processes restarted by the supervisor after they exited.",
        registry=None,
    )


def _exit_cause(code: int) -> dict[str, Any]:
    """Popen reports death by a signal as a negative code: name the signal instead."""
    if code < 0:
        return {"exit_code": None, "signal": _signal_name(-code)}
    return {"exit_code": code, "signal": None}


def _describe(code: int) -> str:
    return f"signal {_signal_name(-code)}" if code < 0 else f"exit code {code}"


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return str(number)


def _stop(slots: list[_Slot]) -> None:
    """SIGTERM every live worker (a no-op for those the signal handler reached), then wait."""
    live = [slot.process for slot in slots if slot.process is not None]
    for process in live:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + STOP_TIMEOUT
    for process in live:
        try:
            process.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
