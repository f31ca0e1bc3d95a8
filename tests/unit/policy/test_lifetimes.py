"""A source's bounds on how long a URL lives: ``max_ttl`` holds on verify as on signing,
and ``require_expires`` makes an md5-token URL without an expiry ``missing``."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from sidecar import config
from sidecar.core.verdict import Reason
from sidecar.errors import ConfigError, SigningError
from sidecar.policy.decide import Decider, RequestFacts
from sidecar.policy.signing import sign_url
from tests.support.config_files import write
from tests.support.configs import md5_source

NOW = 1_900_000_000
TOKEN = "books-token-0123"


def books(**fields: str | int | bool) -> str:
    return md5_source("books", "/books/", {"k": TOKEN}, **fields)


def decider(tmp_path: Path, **fields: str | int | bool) -> Decider:
    return Decider(config.load(write(tmp_path, books(**fields)), environ={}))


def decide(policy: Decider, uri: str, now: float = NOW) -> Reason:
    return policy.decide(RequestFacts(uri, "GET", "image.example.com"), now).reason


def signed(uri: str) -> str:
    digest = hashlib.md5((uri + TOKEN).encode()).hexdigest()
    return f"{uri}{'&' if '?' in uri else '?'}s={digest}"


def test_max_ttl_is_enforced_on_verify(tmp_path: Path) -> None:
    policy = decider(tmp_path, max_ttl=3600)
    assert decide(policy, signed(f"/books/a.jpg?expires={NOW + 3600}")) is Reason.OK
    # A leaked key would mint URLs valid for decades: refused.
    assert decide(policy, signed(f"/books/a.jpg?expires={NOW + 3600 + 31}")) is Reason.INVALID
    assert decide(policy, signed(f"/books/a.jpg?expires={NOW + 10**9}")) is Reason.INVALID
    assert decide(policy, signed("/books/a.jpg")) is Reason.MISSING  # never expires


def test_max_ttl_signing_never_makes_urls_without_expiry(tmp_path: Path) -> None:
    settings = config.load(write(tmp_path, books(max_ttl=3600)), environ={})
    url = sign_url(settings, "books", "/books/a.jpg", now=NOW)
    assert f"expires={NOW + 3600}" in url
    assert decide(Decider(settings), url) is Reason.OK


def test_md5_token_can_require_expires(tmp_path: Path) -> None:
    policy = decider(tmp_path, require_expires=True)
    assert decide(policy, signed("/books/a.jpg")) is Reason.MISSING
    assert decide(policy, signed(f"/books/a.jpg?expires={NOW + 60}")) is Reason.OK
    with pytest.raises(SigningError, match="requires an expiry"):
        sign_url(policy.settings, "books", "/books/a.jpg", now=NOW)
    assert "expires=" in sign_url(policy.settings, "books", "/books/a.jpg", now=NOW, expires_in=60)


def test_require_expires_must_be_a_boolean(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        config.load(write(tmp_path, books(require_expires="yes")), environ={})
    assert any(".require_expires" in problem for problem in caught.value.problems)
