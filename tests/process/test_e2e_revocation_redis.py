"""Taking grants back with ``[state] url``: two sidecar processes sharing a real
redis-server, as a fleet does. A revocation reaches the other sidecar within a second;
uses are counted exactly; and with the server killed and restarted under load, no wrong
allow: revocations keep the last set read, counted sources deny ``unavailable`` (never a
500), and both recover without a restart."""

from __future__ import annotations

import concurrent.futures
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from sidecar.devtools.local_stack import LocalStack
from tests.support import figures
from tests.support.metrics import sample
from tests.support.redis_server import RedisServer, running_redis
from tests.support.requests import HOST, verify
from tests.support.revocation_fleet import (
    MAX_USES,
    reason,
    running_fleet,
    sidecar_cli,
    until_reason,
)
from tests.support.tokens import md5_signed

Fleet = tuple[LocalStack, LocalStack]
OUTAGE = 2.0  # seconds the server stays down under load
RECOVERY_TIMEOUT = 10.0


@pytest.fixture(scope="module")
def redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    with running_redis(tmp_path_factory.mktemp("redis")) as server:
        yield server


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory, redis: RedisServer) -> Iterator[Fleet]:
    folder: Path = tmp_path_factory.mktemp("revocation-redis")
    with running_fleet(folder, f'\n[state]\nurl = "{redis.url}"\n') as both:
        yield both


def test_a_revocation_reaches_the_other_sidecar_within_a_second(fleet: Fleet) -> None:
    first, second = fleet
    uri = md5_signed("/books/a.jpg?fleet=1")
    assert reason(second, uri) == "ok"
    done = sidecar_cli(first, "revoke", "--host", HOST, uri)
    assert done.returncode == 0, done.stderr
    assert until_reason(second, uri, "revoked", timeout=1.0) < 1.0


def test_uses_are_counted_exactly_across_the_fleet(fleet: Fleet) -> None:
    uri = md5_signed("/once/a.jpg?fleet=exact")

    def ask(n: int) -> str:
        return reason(fleet[n % 2], uri, client_ip=f"198.51.100.{n + 1}")

    with concurrent.futures.ThreadPoolExecutor(12) as pool:
        answers = list(pool.map(ask, range(12)))
    assert answers.count("ok") == MAX_USES and answers.count("used_up") == 12 - MAX_USES


def test_the_store_killed_and_restarted_under_load(fleet: Fleet, redis: RedisServer) -> None:
    first, second = fleet
    revoked, plain = md5_signed("/books/a.jpg?load=revoked"), md5_signed("/books/a.jpg?load=plain")
    counted = md5_signed("/once/a.jpg?load=counted")
    assert sidecar_cli(first, "revoke", "--host", HOST, revoked).returncode == 0
    until_reason(second, revoked, "revoked", timeout=1.0)
    answers: dict[str, Counter[tuple[int, str]]] = {"revoked": Counter(), "plain": Counter(),
                                                    "counted": Counter()}  # fmt: skip
    stop = threading.Event()
    users: set[str] = set()  # the client addresses the counted grant allowed

    def load(worker: int) -> None:
        n = 0
        while not stop.is_set():
            n += 1
            stack = fleet[(worker + n) % 2]
            client = f"198.51.{worker}.{n % 250 + 1}"
            for name, uri in (("revoked", revoked), ("plain", plain), ("counted", counted)):
                reply = verify(stack, uri, client_ip=client)
                answers[name][reply.status, reply.headers.get("x-signature-result", "")] += 1
                if name == "counted" and reply.status == 200:
                    users.add(client)

    threads = [threading.Thread(target=load, args=(worker,)) for worker in range(4)]
    for thread in threads:
        thread.start()
    try:
        time.sleep(0.5)
        redis.kill()
        time.sleep(OUTAGE)
        age_during = sample(first, "signed_url_state_age_seconds")
        redis.start()
        fresh = md5_signed("/once/a.jpg?load=after")
        started = time.monotonic()
        while reason(second, fresh) != "ok":
            assert time.monotonic() - started < RECOVERY_TIMEOUT, "counting did not recover"
            time.sleep(0.05)
        time.sleep(0.3)
    finally:
        stop.set()
        for thread in threads:
            thread.join()
    total = sum(sum(counter.values()) for counter in answers.values())
    figures.record("requests under a store outage", total)
    figures.record("wrong allows under a store outage", answers["revoked"][200, "ok"])
    assert set(answers["revoked"]) == {(403, "revoked")}  # the last set read, all along
    assert set(answers["plain"]) == {(200, "ok")}  # no use counted: the store not asked
    # Every use counted, none allowed blind: at most MAX_USES addresses were ever allowed
    # (an address allowed once continues its use within use_window, as a download does).
    assert 0 < len(users) <= MAX_USES
    assert set(answers["counted"]) <= {(200, "ok"), (403, "used_up"), (403, "unavailable")}
    assert answers["counted"][403, "unavailable"] > 0
    assert age_during >= 1.0  # it said how old its revocations were
    assert (
        sample(first, "signed_url_state_errors_total", operation="use")
        + sample(second, "signed_url_state_errors_total", operation="use")
        > 0
    )
    deadline = time.monotonic() + RECOVERY_TIMEOUT
    while sample(first, "signed_url_state_age_seconds") > 1.5:
        assert time.monotonic() < deadline, "the revocations were not read again"
        time.sleep(0.1)
