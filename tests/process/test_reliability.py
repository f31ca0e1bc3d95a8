"""Fail closed under faults, load, reloads and rotation, with the real nginx and sidecar.

Each test drives steady traffic through nginx (or straight at the sidecar), injects a
fault, and checks every answer: no request without a valid signature ever gets a 200 or
an image, every request gets an answer, and service returns after the fault.
"""

from __future__ import annotations

import itertools
import os
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from sidecar.devtools.local_stack import LocalStack
from tests.support.configs import md5_source, sidecar_config, source_toml
from tests.support.figures import record
from tests.support.metrics import sample
from tests.support.requests import fetch
from tests.support.stacks import image_bytes, running_stack, start_sidecar
from tests.support.tokens import md5_signed

OLD_TOKEN = "reliability-old-token-0123456789"
NEW_TOKEN = "reliability-new-token-9876543210"
IMAGE = "/books/x.png"


def config(*tokens: str) -> str:
    keys = {f"k{index}": token for index, token in enumerate(tokens)}
    return sidecar_config(md5_source("books", "/books/", keys), server={"clock_skew": 0})


_serial = itertools.count()


def fresh(token: str) -> str:
    """A URL nobody asked for before (so nginx's auth cache cannot answer it)."""
    return md5_signed(f"{IMAGE}?n={next(_serial)}&t={time.monotonic_ns()}", token)


def forged(token: str) -> str:
    """A fresh URL whose signature is one hex digit off."""
    uri = fresh(token)
    return uri[:-1] + ("1" if uri[-1] == "0" else "0")


@dataclass
class Traffic:
    """Threads sending a mix of validly signed and forged URLs through nginx until stopped.

    ``signer`` may be changed while running (key rotation); each answer is recorded with
    whether its URL was validly signed, and by which token.
    """

    stack: LocalStack
    signer: str
    threads: int = 4
    answers: list[tuple[bool, str, int, bool]] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _workers: list[threading.Thread] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __enter__(self) -> Traffic:
        self._workers = [threading.Thread(target=self._run) for _ in range(self.threads)]
        for worker in self._workers:
            worker.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for worker in self._workers:
            worker.join(timeout=30)

    def _run(self) -> None:
        expected = image_bytes(self.stack, IMAGE)
        for index in itertools.count():
            if self._stop.is_set():
                return
            token = self.signer
            valid = index % 3 != 2
            uri = fresh(token) if valid else forged(token)
            status, body = fetch(self.stack, uri)
            with self._lock:
                self.answers.append((valid, token, status, body == expected))

    def wrong_allows(self) -> int:
        return sum(
            1 for valid, _, status, image in self.answers if not valid and (status == 200 or image)
        )

    def statuses(self, *, valid: bool) -> set[int]:
        return {status for v, _, status, _ in self.answers if v is valid}


def wait_for(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.05)


def reloads(stack: LocalStack, result: str) -> float:
    return sample(stack, "signed_url_config_reloads_total", result=result)


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[LocalStack]:
    with running_stack(tmp_path, config(OLD_TOKEN)) as running:
        yield running


def test_sidecar_killed_during_traffic_fails_closed_and_recovers(stack: LocalStack) -> None:
    with Traffic(stack, OLD_TOKEN) as traffic:
        time.sleep(1.0)
        assert stack.sidecar is not None
        stack.sidecar.kill()
        stack.sidecar.wait()
        time.sleep(1.0)
        start_sidecar(stack)
        time.sleep(1.0)
    assert traffic.wrong_allows() == 0
    assert 0 not in traffic.statuses(valid=True) | traffic.statuses(valid=False)  # all answered
    assert traffic.statuses(valid=False) <= {401, 500}
    assert 500 in traffic.statuses(valid=True), "the outage was not observed"
    assert fetch(stack, fresh(OLD_TOKEN))[0] == 200
    record("requests sent under faults", len(traffic.answers))
    record("faults injected", 1)
    record("wrong allows", traffic.wrong_allows())


def test_frozen_sidecar_answers_500_within_the_timeout(stack: LocalStack) -> None:
    assert stack.sidecar is not None
    assert fetch(stack, fresh(OLD_TOKEN))[0] == 200
    stack.sidecar.send_signal(signal.SIGSTOP)
    try:
        started = time.monotonic()
        status, body = fetch(stack, fresh(OLD_TOKEN))
        elapsed = time.monotonic() - started
        forged_status, forged_body = fetch(stack, forged(OLD_TOKEN))
    finally:
        stack.sidecar.send_signal(signal.SIGCONT)
    assert status == 500 and body != image_bytes(stack, IMAGE)
    assert forged_status == 500 and forged_body != image_bytes(stack, IMAGE)
    assert 0.9 <= elapsed < 3.0  # nginx's proxy_read_timeout is 1 s
    wait_for(lambda: fetch(stack, fresh(OLD_TOKEN))[0] == 200)
    record("faults injected", 1)


def test_key_rotation_under_load(stack: LocalStack) -> None:
    with Traffic(stack, OLD_TOKEN) as traffic:
        time.sleep(0.5)
        # 1. Add the new key beside the old one.
        before = reloads(stack, "success")
        stack.write_config(config(NEW_TOKEN, OLD_TOKEN))
        assert stack.sidecar is not None
        stack.sidecar.send_signal(signal.SIGHUP)
        wait_for(lambda: reloads(stack, "success") > before)
        # 2. Move the signers to the new key.
        traffic.signer = NEW_TOKEN
        time.sleep(1.0)
        # 3. Retire the old key.
        before = reloads(stack, "success")
        stack.write_config(config(NEW_TOKEN))
        stack.sidecar.send_signal(signal.SIGHUP)
        wait_for(lambda: reloads(stack, "success") > before)
        time.sleep(0.5)
    false_denials = [a for a in traffic.answers if a[0] and a[2] != 200]
    assert false_denials == []
    assert {token for valid, token, _, _ in traffic.answers if valid} == {OLD_TOKEN, NEW_TOKEN}
    assert traffic.wrong_allows() == 0
    # Right after retirement: the old key is refused, the new one served.
    assert fetch(stack, fresh(OLD_TOKEN))[0] == 401
    assert fetch(stack, fresh(NEW_TOKEN))[0] == 200
    record("requests sent under faults", len(traffic.answers))
    record("wrong allows", traffic.wrong_allows())


def test_broken_config_pushed_under_load_keeps_the_old_one(stack: LocalStack) -> None:
    before = reloads(stack, "failure")
    with Traffic(stack, OLD_TOKEN) as traffic:
        time.sleep(0.5)
        stack.config_path.write_text("[server]\nworkers = 'many'\n[[sources]]\nname = 1\n")
        assert stack.sidecar is not None
        stack.sidecar.send_signal(signal.SIGHUP)
        wait_for(lambda: reloads(stack, "failure") > before)
        time.sleep(0.5)
    assert traffic.statuses(valid=True) == {200}  # zero failed requests
    assert traffic.statuses(valid=False) == {401}
    assert fetch(stack, fresh(OLD_TOKEN))[0] == 200  # the old config still serves
    log = (stack.folder / "sidecar.log").read_text()
    assert '"event":"reload_failed"' in log
    record("requests sent under faults", len(traffic.answers))
    record("faults injected", 1)


def test_secret_swapped_like_a_kubernetes_secret_is_picked_up_without_a_signal(
    tmp_path: Path,
) -> None:
    # kubelet updates a mounted Secret by pointing "..data" at a new folder, atomically.
    secrets = tmp_path / "secrets"
    (secrets / "..2026_11_01").mkdir(parents=True)
    (secrets / "..2026_11_01" / "token").write_text(OLD_TOKEN + "\n")
    (secrets / "..data").symlink_to("..2026_11_01")
    (secrets / "token").symlink_to("..data/token")
    text = sidecar_config(
        source_toml(
            "books", "md5-token", "/books/", {"k0": {"secret_file": str(secrets / "token")}}
        ),
        server={"clock_skew": 0},
    )
    with running_stack(tmp_path / "stack", text) as stack:
        assert fetch(stack, fresh(OLD_TOKEN))[0] == 200
        (secrets / "..2026_11_22").mkdir()
        (secrets / "..2026_11_22" / "token").write_text(NEW_TOKEN + "\n")
        (secrets / "..data_tmp").symlink_to("..2026_11_22")
        os.replace(secrets / "..data_tmp", secrets / "..data")
        wait_for(lambda: fetch(stack, fresh(NEW_TOKEN))[0] == 200, timeout=15)
        assert fetch(stack, fresh(OLD_TOKEN))[0] == 401
        assert reloads(stack, "success") >= 1


def test_sigterm_lets_an_in_flight_request_finish(tmp_path: Path) -> None:
    with running_stack(tmp_path, config(OLD_TOKEN), nginx=False) as stack:
        uri = fresh(OLD_TOKEN)
        head = f"GET /verify HTTP/1.1\r\nHost: sidecar\r\nX-Original-URI: {uri}\r\n".encode()
        rest = b"X-Original-Method: GET\r\nX-Original-Host: image.example.com\r\n\r\n"
        with socket.create_connection(("127.0.0.1", stack.sidecar_port), timeout=10) as sock:
            sock.sendall(head)
            time.sleep(0.3)
            assert stack.sidecar is not None
            stack.sidecar.send_signal(signal.SIGTERM)
            time.sleep(0.5)
            sock.sendall(rest)
            answer = sock.recv(65536)
        assert answer.startswith(b"HTTP/1.1 200 ")
        assert b"X-Signature-Result: ok" in answer
        assert stack.sidecar.wait(timeout=10) == 0
        # A new connection is refused once it is stopping.
        with pytest.raises(OSError):
            socket.create_connection(("127.0.0.1", stack.sidecar_port), timeout=2).close()


SOAK_URLS = 1_000_000
SOAK_SECONDS = 300  # a bound: the soak fails rather than run on
BATCH = 500


def _rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def _soak_connection(port: int, numbers: range, failures: list[str]) -> int:
    """Pipeline ``numbers`` distinct URLs (every tenth forged); check each answer in order."""
    checked = 0
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        for first in range(numbers.start, numbers.stop, BATCH):
            batch = range(first, min(first + BATCH, numbers.stop))
            requests = []
            for n in batch:
                uri = md5_signed(f"{IMAGE}?soak={n}", OLD_TOKEN)
                if n % 10 == 0:
                    uri = uri[:-1] + ("1" if uri[-1] == "0" else "0")
                requests.append(
                    f"GET /verify HTTP/1.1\r\nHost: s\r\nX-Original-URI: {uri}\r\n"
                    "X-Original-Method: GET\r\nX-Original-Host: image.example.com\r\n\r\n"
                )
            sock.sendall("".join(requests).encode())
            buffer = b""
            while buffer.count(b"\r\n\r\n") < len(batch):
                chunk = sock.recv(1 << 20)
                assert chunk, "the sidecar closed the connection"
                buffer += chunk
            answers = buffer.split(b"\r\n\r\n")[: len(batch)]
            for n, answer in zip(batch, answers, strict=True):
                expected = b"HTTP/1.1 401 " if n % 10 == 0 else b"HTTP/1.1 200 "
                if not answer.startswith(expected):
                    failures.append(f"url {n}: {answer[:40]!r}")
                checked += 1
    return checked


def test_soak_a_million_distinct_urls(tmp_path: Path) -> None:
    with running_stack(tmp_path, config(OLD_TOKEN), nginx=False) as stack:
        assert stack.sidecar is not None
        pid = stack.sidecar.pid
        started = time.monotonic()
        failures: list[str] = []
        warm = _soak_connection(stack.sidecar_port, range(0, 100_000), failures)
        rss_warm = _rss_kb(pid)
        halves = [range(100_000, 550_000), range(550_000, SOAK_URLS)]
        counts = [0, 0]

        def run(index: int) -> None:
            counts[index] = _soak_connection(stack.sidecar_port, halves[index], failures)

        workers = [threading.Thread(target=run, args=(i,)) for i in range(2)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join(timeout=SOAK_SECONDS)
        elapsed = time.monotonic() - started
        assert not any(worker.is_alive() for worker in workers), f"soak exceeded {SOAK_SECONDS} s"
        rss_end = _rss_kb(pid)
        log = (stack.folder / "sidecar.log").read_text()
        allowed = sample(
            stack, "signed_url_verifications_total",
            source="books", scheme="md5-token", result="ok", decision="allow",
        )  # fmt: skip
    total = warm + sum(counts)
    print(f"\nsoak: {total:,} distinct URLs in {elapsed:.0f} s, RSS {rss_warm / 1024:.1f} MB "
          f"after 100k -> {rss_end / 1024:.1f} MB after {total:,}")  # fmt: skip
    assert total == SOAK_URLS
    assert failures == []
    assert allowed == SOAK_URLS * 9 // 10
    assert rss_end - rss_warm < 8 * 1024, "memory grew: something is unbounded"
    assert rss_end < 60 * 1024
    assert '"event":"error"' not in log and "Traceback" not in log
    record("soak URLs verified", total)
