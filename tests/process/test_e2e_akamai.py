"""``akamai`` end to end: EdgeAuth 2.0 tokens, made by ``akamai-edgeauth`` (in a child
process: it sets TZ on import) and by the scheme, through the real nginx and sidecar."""

from __future__ import annotations

import time

import pytest

from sidecar.devtools.local_stack import LocalStack
from sidecar.schemes.base import KeyMaterial
from tests.support.configs import sidecar_config, source_toml
from tests.support.reference_signers import library_tokens
from tests.support.requests import fetch, fetch_with_reason
from tests.support.scheme_contract import build_source, sign
from tests.support.stacks import StackFactory, image_bytes

KEY = "4f1c2a9e7b3d5f60718293a4b5c6d7e8f9011223344556677889aabbccddeeff"
OLD_KEY = "0123456789ABCDEF0123456789ABCDEF"
FOREIGN = "ab" * 32


@pytest.fixture(scope="module")
def stack(shared_stacks: StackFactory) -> LocalStack:
    keys = {"edge-new": {"secret": KEY}, "edge-old": {"secret": OLD_KEY}}
    config = sidecar_config(source_toml("edge", "akamai", "/", keys), server={"clock_skew": 0})
    return shared_stacks(config)


def library(key: str = KEY, expires_in: int = 300, **spec: object) -> str:
    return library_tokens([{"key": key, "expires": int(time.time()) + expires_in, **spec}])[0]


def ours(uri: str, expires_in: int = 300, **grant: object) -> str:
    verifier = build_source("akamai", [KeyMaterial("edge-new", secret=KEY.encode())])
    return sign(verifier, uri, expires=int(time.time()) + expires_in, **grant)


def presented(uri: str, token: str) -> str:
    return f"{uri}{'&' if '?' in uri else '?'}__token__={token}"


@pytest.mark.parametrize(
    ("uri", "file"),
    [
        ("/books/x.png", "/books/x.png"),
        ("/books/x.png?w=640&h=480", "/books/x.png"),
        ("/books/caf%C3%A9%20menu.png", "/books/caf\u00e9 menu.png"),
        ("/reports/r.png", "/reports/r.png"),
    ],
)
def test_fresh_tokens_serve_the_file(stack: LocalStack, uri: str, file: str) -> None:
    path = uri.partition("?")[0]  # a URL token signs the path as the URL carries it
    candidates = [
        presented(uri, library(url=path)),
        presented(uri, library(key=OLD_KEY, url=path, algorithm="sha256")),
        presented(uri, library(acl=["/books/*", "/reports/*"])),
        ours(uri),
        ours(uri, prefix=file.rpartition("/")[0] + "/"),
    ]
    for signed in candidates:
        status, body = fetch(stack, signed)
        assert (status, body) == (200, image_bytes(stack, file)), signed


# One key, two sources: a token's ACL must stay within the source it is presented to.
SHARED_KEY_CONFIG = sidecar_config(
    source_toml("books", "akamai", "/books/", {"b1": {"secret": KEY}}, escape_early=True),
    source_toml("reports", "akamai", "/reports/", {"r1": {"secret": KEY}}),
    server={"clock_skew": 0},
)


@pytest.fixture(scope="module")
def shared_key_stack(shared_stacks: StackFactory) -> LocalStack:
    return shared_stacks(SHARED_KEY_CONFIG)


def test_an_acl_beyond_its_source_opens_nothing_there(shared_key_stack: LocalStack) -> None:
    for acl in (["/*"], ["/books/*", "/reports/*"], ["/re*"]):
        token = library(acl=acl)
        for path in ("/reports/r.png", "/books/x.png"):
            status, body, reason = fetch_with_reason(shared_key_stack, presented(path, token))
            assert (status, reason) == (403, "invalid"), (acl, path)
            assert body != image_bytes(shared_key_stack, path)
    within = presented("/reports/r.png", library(acl=["/reports/*"]))
    assert fetch(shared_key_stack, within) == (200, image_bytes(shared_key_stack, "/reports/r.png"))


def test_an_escaped_early_url_token_for_an_encoded_path(shared_key_stack: LocalStack) -> None:
    uri = "/books/caf%C3%A9%20menu.png"
    expected = (200, image_bytes(shared_key_stack, "/books/caf\u00e9 menu.png"))
    assert fetch(shared_key_stack, presented(uri, library(url=uri, escape_early=True))) == expected
    decoded = library(url="/books/caf\u00e9 menu.png", escape_early=True)
    assert fetch_with_reason(shared_key_stack, presented(uri, decoded))[::2] == (403, "invalid")


def test_an_ip_bound_token_serves_its_client_only(stack: LocalStack) -> None:
    mine = presented("/books/x.png", library(acl=["/books/*"], ip="127.0.0.1"))
    assert fetch(stack, mine) == (200, image_bytes(stack, "/books/x.png"))
    theirs = presented("/books/x.png", library(acl=["/books/*"], ip="192.0.2.1"))
    status, _, reason = fetch_with_reason(stack, theirs)
    assert (status, reason) == (403, "ip_mismatch")


def test_a_widened_acl_is_403(stack: LocalStack) -> None:
    token = library(acl=["/books/*"])
    assert fetch(stack, presented("/books/x.png", token))[0] == 200
    for elsewhere in ("/secret/x.png", "/public/x.png", "/other/o.png"):
        status, body, reason = fetch_with_reason(stack, presented(elsewhere, token))
        assert (status, reason) == (403, "invalid"), elsewhere
        assert body != image_bytes(stack, elsewhere)
    url_token = library(url="/books/x.png")
    status, _, reason = fetch_with_reason(stack, presented("/secret/x.png", url_token))
    assert (status, reason) == (403, "invalid")


def test_a_foreign_key_is_403(stack: LocalStack) -> None:
    for token in (library(key=FOREIGN, acl=["/*"]), library(key=FOREIGN, url="/books/x.png")):
        status, body, reason = fetch_with_reason(stack, presented("/books/x.png", token))
        assert (status, reason) == (403, "invalid")
        assert body != image_bytes(stack, "/books/x.png")


def test_expired_and_early_tokens_are_403(stack: LocalStack) -> None:
    expired = presented("/books/x.png", library(acl=["/books/*"], expires_in=-5))
    assert fetch_with_reason(stack, expired)[::2] == (403, "expired")
    early = library(acl=["/books/*"], expires_in=600, start_time=int(time.time()) + 300)
    assert fetch_with_reason(stack, presented("/books/x.png", early))[::2] == (403, "not_yet_valid")


def test_no_token_and_a_repeated_token(stack: LocalStack) -> None:
    assert fetch_with_reason(stack, "/books/x.png")[::2] == (403, "missing")
    signed = presented("/books/x.png", library(url="/books/x.png"))
    repeated = signed + "&" + signed.partition("?")[2]
    assert fetch_with_reason(stack, repeated)[::2] == (403, "non_canonical")


def _expected(token: str, index: int) -> set[str]:
    """What the sidecar answers when the token's character at ``index`` changes."""
    hmac_at = token.index("~hmac=") + 6
    if index >= hmac_at:
        return {"invalid"}  # another lowercase hex digit
    if index >= hmac_at - 5 or token[index - 1 : index + 1] in ("~e", "ex", "xp", "~a", "ac"):
        return {"malformed"}  # a field name changed
    return {"invalid", "malformed"}  # exp digits (a leading zero is malformed), the ACL


def test_every_changed_character_is_403_with_its_reason(stack: LocalStack) -> None:
    token = library(acl=["/books/*"])
    uri = "/books/x.png?__token__="
    assert fetch(stack, uri + token)[0] == 200
    checked = 0
    for index, char in enumerate(token):
        if not char.isalnum():
            continue  # separators: covered by the unit tests' strict parsing
        alphabet = (
            "0123456789abcdef" if char in "0123456789abcdef" else "abcdefghijklmnopqrstuvwxyz"
        )
        replacement = alphabet[(alphabet.index(char) + 1) % len(alphabet)]
        changed = token[:index] + replacement + token[index + 1 :]
        status, body, reason = fetch_with_reason(stack, uri + changed)
        assert status == 403, changed
        assert reason in _expected(token, index), (changed, reason)
        assert body != image_bytes(stack, "/books/x.png")
        checked += 1
    assert checked > 70
