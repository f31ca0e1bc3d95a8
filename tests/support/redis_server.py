"""A real ``redis-server`` (Debian's package) on a loopback port of its own, for the
tests of ``[state] url``: started, killed and restarted as a fleet's store would be."""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from sidecar.devtools.local_stack import free_port

STOP_TIMEOUT = 10.0
START_TIMEOUT = 10.0
START_ATTEMPTS = 5
READY = b"Ready to accept connections"


def redis_binary() -> str:
    found = shutil.which("redis-server") or "/usr/bin/redis-server"
    if not Path(found).exists():
        raise FileNotFoundError(
            "redis-server is not installed (Debian: apt-get install redis-server)"
        )
    return found


@dataclass
class RedisServer:
    folder: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        """Start (or restart, on the same port and files). Every write is on disk before
        Redis answers it (appendfsync always), so a server killed and restarted comes back
        with what it had, as a production one with persistence does.

        Ready means this process said so in its own log, not that the port answers: a
        port picked free may be taken by another suite's server in the meantime, which
        would then be this test's store. A first start that loses its port takes another;
        a restart keeps its port (its URL is in the sidecars' config) and fails loudly."""
        restart = self.process is not None
        for _ in range(START_ATTEMPTS):
            if self._started():
                return
            if restart:
                break
            self.port = free_port()
        raise RuntimeError(f"redis-server did not start on port {self.port}: see {self._log}")

    @property
    def _log(self) -> Path:
        return self.folder / "redis.log"

    def _started(self) -> bool:
        self.folder.mkdir(parents=True, exist_ok=True)
        before = self._log.read_bytes().count(READY) if self._log.exists() else 0
        with self._log.open("ab") as log:  # the child keeps its own copy
            self.process = subprocess.Popen(
                [redis_binary(), "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                 "--appendonly", "yes", "--appendfsync", "always", "--dir", str(self.folder),
                 "--protected-mode", "yes"],
                stdout=log, stderr=subprocess.STDOUT,
            )  # fmt: skip
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self._log.read_bytes().count(READY) > before:
                return True
            if self.process.poll() is not None:
                return False  # its port was taken
            time.sleep(0.02)
        self.kill()
        return False

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(STOP_TIMEOUT)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.kill()


@contextlib.contextmanager
def running_redis(folder: Path) -> Iterator[RedisServer]:
    server = RedisServer(folder)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def wait_until(condition: object, timeout: float = 5.0) -> float:
    """Seconds until ``condition()`` held (it is polled every 20 ms), or AssertionError."""
    assert callable(condition)
    started = time.monotonic()
    while not condition():
        if time.monotonic() - started > timeout:
            raise AssertionError(f"not within {timeout} s")
        time.sleep(0.02)
    return time.monotonic() - started
