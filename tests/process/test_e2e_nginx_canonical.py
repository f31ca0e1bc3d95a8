"""End to end through nginx: only canonical URIs are decided, and every spelling of a
source's path is judged as that source (never as the unsigned catch-all at "/")."""

from __future__ import annotations

import json
import re

import pytest

from sidecar.devtools.local_stack import LocalStack
from tests.support.e2e_table import NON_CANONICAL
from tests.support.md5_sources import MAIN_CONFIG, REFERENCE_URL
from tests.support.metrics import verifications_total
from tests.support.requests import HOST, fetch, fetch_with_reason, raw_exchange
from tests.support.stacks import StackFactory, any_image_in, assert_denied
from tests.support.tokens import BOOKS_TOKEN, SECRET_TOKEN, md5_signed


@pytest.fixture(scope="module")
def stack(shared_stacks: StackFactory) -> LocalStack:
    return shared_stacks(MAIN_CONFIG)


# --- canonical URIs only (the table: tests/support/e2e_table.py) --------------------------


@pytest.mark.parametrize("signed", [False, True], ids=["unsigned", "signed-raw"])
@pytest.mark.parametrize("path", NON_CANONICAL)
def test_non_canonical_uri_is_denied(stack: LocalStack, path: str, signed: bool) -> None:
    token = SECRET_TOKEN if path.startswith("/secret") else BOOKS_TOKEN
    status, body, reason = fetch_with_reason(stack, md5_signed(path, token) if signed else path)
    # No source is chosen for a URI with no canonical form: the server's deny_status (403).
    assert_denied(status, body, stack, 403)
    assert reason == "non_canonical"


@pytest.mark.parametrize("path", ["/../secret/x.png", "/books/x.png%00"])
def test_nginx_refuses_some_uris_itself(stack: LocalStack, path: str) -> None:
    asked = verifications_total(stack)
    status, body = fetch(stack, md5_signed(path))
    assert_denied(status, body, stack, 400)
    assert verifications_total(stack) == asked  # the sidecar was never asked


ENCODED_LETTERS = {
    # nginx serves /books/... for /b%6Foks/...: it must be judged as /books/, not fall
    # through to the unsigned catch-all at "/".
    "unsigned": ("/b%6Foks/database-internals.jpg", 401, "missing"),
    "signature of the plain spelling": (
        REFERENCE_URL.replace("/books/", "/b%6Foks/"),
        401,
        "invalid",
    ),
    "secret source": ("/s%65cret/x.png", 403, "missing"),
}


@pytest.mark.parametrize(
    ("uri", "code", "reason"), ENCODED_LETTERS.values(), ids=ENCODED_LETTERS.keys()
)
def test_encoded_letters_route_to_their_source(
    stack: LocalStack, uri: str, code: int, reason: str
) -> None:
    status, body, logged = fetch_with_reason(stack, uri)
    assert_denied(status, body, stack, code)
    assert logged == reason


@pytest.mark.parametrize("path", [b"/books/\xff.png", b"/books/caf\xe9.png"])
def test_raw_non_utf8_path_is_denied_cleanly(fresh_stack: StackFactory, path: bytes) -> None:
    # nginx passes raw bytes >= 0x80 on in $request_uri; invalid UTF-8 is non-canonical:
    # an answer, not an internal error. A fresh sidecar: its denial log
    # budget is unspent, so the denial is really logged.
    stack = fresh_stack(MAIN_CONFIG)
    answer = raw_exchange(
        stack.nginx_port,
        b"GET " + path + b" HTTP/1.1\r\nHost: " + HOST.encode() + b"\r\nConnection: close\r\n\r\n",
    )
    assert answer.startswith(b"HTTP/1.1 403 ")
    assert not any_image_in(answer, stack)
    request_id = re.search(rb"\r\nX-Request-ID: ([0-9a-f]{32})\r\n", answer)
    assert request_id is not None
    assert stack.result_for(request_id.group(1).decode()) == "non_canonical"
    for line in (stack.folder / "sidecar.log").read_text().splitlines():
        json.loads(line)  # JSON lines only: no traceback
