"""``jwks_url`` while the sidecar runs: a loopback JWKS server (started here) changes its key
set; a new kid is accepted after the cooldown; a server serving garbage, too much or
nothing leaves the last good set in force, each failure counted."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest

from sidecar.devtools.local_stack import LocalStack
from tests.support.configs import sidecar_config, source_toml
from tests.support.jwt_keys import key_for, pyjwt_token
from tests.support.metrics import sample
from tests.support.requests import fetch_with_reason
from tests.support.stacks import running_stack

IMAGE = "/books/x.png"
OLD, NEW, LATER = key_for("ES256", "old"), key_for("RS256", "new"), key_for("EdDSA", "later")
DEADLINE = 10.0  # seconds: a cooldown of 1 s and the fetcher's 1 s tick, many times over


class JwksServer(BaseHTTPRequestHandler):
    """Answers every GET with ``body`` and ``status``, which the test changes."""

    body: ClassVar[bytes] = b""
    status: ClassVar[int] = 200

    def do_GET(self) -> None:
        self.send_response(self.status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, format: str, *args: Any) -> None:
        pass  # quiet


def serve(*keys: Any) -> None:
    JwksServer.body = json.dumps({"keys": [key.public_jwk() for key in keys]}).encode()
    JwksServer.status = 200


@pytest.fixture
def jwks_server() -> Iterator[ThreadingHTTPServer]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), JwksServer)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.fixture
def stack(tmp_path: Path, jwks_server: ThreadingHTTPServer) -> Iterator[LocalStack]:
    serve(OLD)
    url = f"http://127.0.0.1:{jwks_server.server_address[1]}/jwks.json"
    source = source_toml("books", "jwt", "/books/", jwks_url=url, jwks_cooldown=1,
                         jwks_refresh=3600)  # fmt: skip
    with running_stack(tmp_path, sidecar_config(source, server={"clock_skew": 0})) as started:
        yield started


def token(key: Any) -> str:
    return pyjwt_token(key, {"sub": "/books/", "exp": int(time.time()) + 300})


def answer(stack: LocalStack, key: Any) -> tuple[int, str]:
    status, _, reason = fetch_with_reason(stack, f"{IMAGE}?token={token(key)}")
    return status, reason


def eventually(check: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + DEADLINE
    while not check():
        assert time.monotonic() < deadline, what
        time.sleep(0.05)


def failures(stack: LocalStack) -> float:
    return sample(stack, "signed_url_jwks_fetches_total", source="books", result="failure")


def test_a_new_kid_is_accepted_after_the_cooldown(stack: LocalStack) -> None:
    eventually(lambda: answer(stack, OLD) == (200, "ok"), "the first fetch at start")
    assert answer(stack, NEW) == (401, "unknown_key")
    serve(OLD, NEW)  # the provider rotates in a new key
    eventually(lambda: answer(stack, NEW) == (200, "ok"), "the new kid after the cooldown")
    assert answer(stack, OLD) == (200, "ok")
    serve(NEW)  # and retires the old one: the next fetch drops it
    eventually(lambda: answer(stack, LATER) == (401, "unknown_key")
               and answer(stack, OLD) == (401, "unknown_key"), "the old kid removed")  # fmt: skip
    assert sample(stack, "signed_url_jwks_fetches_total", source="books", result="success") >= 3


@pytest.mark.parametrize(
    "broken",
    [
        lambda server: setattr(JwksServer, "body", b"<html>garbage</html>"),
        lambda server: setattr(JwksServer, "status", 503),
        lambda server: setattr(JwksServer, "body", json.dumps(
            {"keys": [LATER.public_jwk()], "pad": "x" * 70000}).encode()),
        lambda server: setattr(JwksServer, "body", b'{"keys": []}'),
        lambda server: (server.shutdown(), server.server_close()),
    ],
    ids=["garbage", "status-503", "over-64-KB", "no-usable-key", "down"],
)  # fmt: skip
def test_a_broken_server_leaves_the_last_good_set(
    stack: LocalStack, jwks_server: ThreadingHTTPServer, broken: Callable[[Any], object]
) -> None:
    eventually(lambda: answer(stack, OLD) == (200, "ok"), "the first fetch at start")
    before = failures(stack)
    broken(jwks_server)
    # An unknown kid asks for a fetch; each one fails and is counted.
    eventually(lambda: answer(stack, LATER) == (401, "unknown_key") and failures(stack) > before,
               "a failed fetch counted")  # fmt: skip
    assert answer(stack, OLD) == (200, "ok")  # the last good set still serves
    assert answer(stack, LATER) == (401, "unknown_key")
