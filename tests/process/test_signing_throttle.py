"""Wrong API keys, throttled per client address, against the real signing listener: after
``SIGNING_THROTTLE.failures`` wrong keys an address is refused (429, ``Retry-After``, a
JSON error) even with a right key, other addresses sign on, and each refusal is logged
without the key."""

from __future__ import annotations

import http.client
import urllib.parse
from collections.abc import Iterator

import orjson
import pytest

from sidecar.devtools.local_stack import LocalStack
from sidecar.runtime.signing_api import SIGNING_THROTTLE
from tests.support.configs import md5_source, sidecar_config, team_toml
from tests.support.logs import log_events, wait_for_events
from tests.support.metrics import samples
from tests.support.stacks import running_stack

KEY = "k-" + "d" * 40
WRONG_KEYS = [f"k-wrong-guess-{n:03d}" for n in range(SIGNING_THROTTLE.failures)]
ATTACKER, NEIGHBOUR = "127.0.0.2", "127.0.0.3"  # loopback addresses of their own
CONFIG = sidecar_config(
    md5_source("books", "/books/", {"k": "books-token-0123456789"}),
    signing={"rate_limit": 0},  # only the wrong-key throttle refuses here
    teams=[team_toml("acme", "books", KEY)],
)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    with running_stack(tmp_path_factory.mktemp("throttle"), CONFIG, nginx=False) as running:
        yield running


def call(stack: LocalStack, key: str, source: str) -> tuple[int, dict[str, str], bytes]:
    """One signUrl call from the loopback address ``source``, on a fresh connection."""
    query = urllib.parse.urlencode({"url": "https://image.example.com/books/a.png"})
    connection = http.client.HTTPConnection(
        "127.0.0.1", stack.signing_port, timeout=5, source_address=(source, 0)
    )
    try:
        connection.request("GET", f"/public/team/acme/signUrl?{query}", headers={"X-Api-Key": key})
        response = connection.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        connection.close()


def test_an_address_that_keeps_guessing_is_refused_and_others_are_not(stack: LocalStack) -> None:
    # 200 wrong keys took 0.12 s, every one of them compared.
    for key in WRONG_KEYS:
        assert call(stack, key, ATTACKER)[0] == 401
    for key in ("k-wrong-guess-999", KEY):  # refused before any key is compared
        status, headers, body = call(stack, key, ATTACKER)
        assert status == 429
        assert orjson.loads(body) == {
            "error": "too many wrong API keys from this address: retry later"
        }
        assert 0 < int(headers["Retry-After"]) <= SIGNING_THROTTLE.lockout
        assert headers["Cache-Control"] == "no-store"
    # Another address, even one that got a key wrong, signs on.
    assert call(stack, "k-wrong-once", NEIGHBOUR)[0] == 401
    assert call(stack, KEY, NEIGHBOUR)[0] == 200
    assert call(stack, KEY, "127.0.0.1")[0] == 200
    refused = samples(stack, "signed_url_signing_requests_total")
    assert refused[frozenset({("team", "acme"), ("result", "rate_limited")})] == 2


def test_each_refusal_is_logged_without_the_key(stack: LocalStack) -> None:
    wait_for_events(stack, "signing_throttled", 2)
    lines = [e for e in log_events(stack) if e["event"] == "signing_throttled"]
    assert {(e["remote"], e["team"]) for e in lines} == {(ATTACKER, "acme")}
    assert all(0 < e["retry_after"] <= SIGNING_THROTTLE.lockout for e in lines)
    text = (stack.folder / "sidecar.log").read_text()
    assert not any(key in text for key in [*WRONG_KEYS, "k-wrong-guess-999", KEY])
