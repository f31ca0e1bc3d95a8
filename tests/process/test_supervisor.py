"""The worker supervisor and a lone worker, as real processes: a port held by another
program gives JSON lines, backoff and a non-zero exit (never a traceback or an endless
loop); a killed worker is restarted and counted in ``signed_url_worker_restarts_total``."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sidecar.runtime import workers
from tests.support.configs import TomlValue, md5_source, sidecar_config
from tests.support.metrics import sample
from tests.support.stacks import running_stack
from tests.support.tokens import BOOKS_TOKEN

BOOKS = md5_source("books", "/books/", {"k": BOOKS_TOKEN})
RESTARTS = "signed_url_worker_restarts_total"
# Every backoff delay before giving up, plus a generous second per worker start.
GIVE_UP_BOUND = sum(workers.backoff(n) for n in range(workers.RESTART_LIMIT)) + 30


@contextmanager
def taken_port() -> Iterator[int]:
    """A loopback port bound and listening by this test (no SO_REUSEPORT: nobody shares)."""
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        yield int(holder.getsockname()[1])


def serve(folder: Path, port: int, workers_: int, *extra: str) -> subprocess.CompletedProcess[str]:
    folder.mkdir(parents=True, exist_ok=True)
    config = folder / "sidecar.toml"
    server: dict[str, TomlValue] = {"listen": f"127.0.0.1:{port}", "workers": workers_}
    config.write_text(sidecar_config(BOOKS, server=server))
    command = [sys.executable, "-m", "sidecar", "serve", "-c", str(config), *extra]
    return subprocess.run(
        command, capture_output=True, text=True, timeout=GIVE_UP_BOUND, check=False
    )


def json_lines(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines()]  # fails on any non-JSON line


def test_a_lone_worker_that_cannot_listen_says_so_in_one_json_line(tmp_path: Path) -> None:
    with taken_port() as port:
        result = serve(tmp_path, port, 1)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    [line] = json_lines(result.stderr)
    assert (line["event"], line["level"], line["errno"]) == ("listen_failed", "error", 98)
    assert f"'127.0.0.1', {port}" in line["error"]  # names the address it could not take


def test_the_supervisor_backs_off_then_gives_up_and_exits_non_zero(tmp_path: Path) -> None:
    started = time.monotonic()
    with taken_port() as port:
        result = serve(tmp_path, port, 2)
    elapsed = time.monotonic() - started
    assert result.returncode != 0
    assert elapsed < GIVE_UP_BOUND
    assert "Traceback" not in result.stderr
    lines = json_lines(result.stderr)
    exits = [line for line in lines if line["event"] == "worker_exit"]
    for slot in (0, 1):
        delays = [line["next_delay"] for line in exits if line["slot"] == slot]
        codes = {line["exit_code"] for line in exits if line["slot"] == slot}
        assert codes == {1}
        # Doubling from the first delay; the exit that exhausts the limit has none.
        assert delays[: workers.RESTART_LIMIT] == [
            workers.backoff(n) for n in range(workers.RESTART_LIMIT)
        ]
    [giving_up] = [line for line in lines if line["event"] == "supervisor_giving_up"]
    assert giving_up["restarts"] == workers.RESTART_LIMIT
    assert "stopping every worker" in giving_up["reason"]
    assert lines[-1]["event"] == "supervisor_stopped"
    assert sum(line["event"] == "listen_failed" for line in lines) >= workers.RESTART_LIMIT


def wait_until(condition: Any, what: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def test_a_killed_worker_is_restarted_and_counted(tmp_path: Path) -> None:
    config = sidecar_config(BOOKS, server={"workers": 2})
    with running_stack(tmp_path / "stack", config, nginx=False) as stack:
        log = stack.folder / "sidecar.log"

        def events(name: str) -> list[dict[str, Any]]:
            return [line for line in json_lines(log.read_text()) if line["event"] == name]

        wait_until(lambda: len(events("start")) == 2, "two workers to start")
        assert sample(stack, RESTARTS) == 0  # the series exists before any restart
        victim = events("supervisor_start")[0]["pids"][0]
        os.kill(victim, signal.SIGKILL)
        # Metrics are read once the replacement listens: a connection the kernel handed
        # to the killed worker's socket is reset.
        wait_until(lambda: len(events("start")) == 3, "the replacement to start")
        [exit_line] = events("worker_exit")
        assert (exit_line["pid"], exit_line["signal"], exit_line["exit_code"]) == (
            victim,
            "SIGKILL",
            None,
        )
        assert exit_line["next_delay"] == workers.backoff(0)
        assert events("worker_restart")[0]["restarts"] == 1
        assert sample(stack, RESTARTS) == 1  # counted once, whichever worker answers
        folder = Path(events("supervisor_start")[0]["metrics_folder"])
        assert folder.is_dir()
        stack.stop_sidecar()  # SIGTERM: a requested stop is no failure
        assert stack.sidecar is not None and stack.sidecar.returncode == 0
        assert not folder.exists()  # the private metrics folder goes with the supervisor
        assert events("supervisor_stopped") and not events("supervisor_giving_up")
