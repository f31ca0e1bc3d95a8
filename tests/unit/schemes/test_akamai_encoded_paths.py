"""Scheme ``akamai``: a URL token signs the path as the URL carries it.

``akamai-edgeauth``'s ``generate_url_token`` is given the path as it appears in the URL the
token is placed in (``/books/caf%C3%A9%20menu.png``) and hashes those bytes (through
``quote_plus`` with ``escape_early``), as the edge does. So a URL token binds one raw
spelling of the path: the library's tokens verify, ``sign`` writes the library's token,
and a token over the decoded text (or another spelling) opens nothing, least of all the
file a decoded name containing ``%XX`` would be mistaken for.
"""

from __future__ import annotations

from typing import Any

import pytest

from sidecar.core.verdict import Reason
from sidecar.schemes.base import KeyMaterial, SourceScheme
from tests.support.reference_signers import library_tokens
from tests.support.scheme_contract import build_source, parse, sign, verify

KEY = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
NOW = 1_900_000_000
EXPIRES = NOW + 600
ENCODED = "/books/caf%C3%A9%20menu.png"
EARLY = [False, True]


def source(escape_early: bool) -> SourceScheme:
    keys = [KeyMaterial("k1", secret=KEY.encode())]
    return build_source("akamai", keys, settings={"escape_early": escape_early})


def library(url: str, escape_early: bool, **spec: Any) -> str:
    options = {"key": KEY, "expires": EXPIRES, "url": url, "escape_early": escape_early}
    return library_tokens([{**options, **spec}])[0]


def reason(escape_early: bool, uri: str, token: str) -> Reason:
    separator = "&" if "?" in uri else "?"
    return verify(source(escape_early), f"{uri}{separator}__token__={token}", NOW).reason


@pytest.mark.parametrize("escape_early", EARLY)
@pytest.mark.parametrize(
    "uri",
    [ENCODED, ENCODED + "?w=400", "/books/caf\u00e9.png", "/books/100%25.png", "/books/a+b.png"],
    ids=["percent-encoded", "with-query", "raw-utf8", "encoded-percent", "plus"],
)
def test_the_librarys_token_for_the_url_it_is_placed_in_verifies(
    escape_early: bool, uri: str
) -> None:
    raw_path = parse(uri).raw_path
    # Before: refused (invalid) wherever the raw path held an escape.
    assert reason(escape_early, uri, library(raw_path, escape_early)) is Reason.OK


@pytest.mark.parametrize("escape_early", EARLY)
def test_sign_writes_the_librarys_token(escape_early: bool) -> None:
    for uri in (ENCODED, ENCODED + "?w=400", "/books/100%25.png"):
        token = parse(sign(source(escape_early), uri, expires=EXPIRES)).get("__token__")
        assert token is not None
        assert token.value == library(parse(uri).raw_path, escape_early), uri


@pytest.mark.parametrize("escape_early", EARLY)
def test_a_token_over_the_decoded_text_opens_nothing(escape_early: bool) -> None:
    decoded = library("/books/caf\u00e9 menu.png", escape_early)
    assert reason(escape_early, ENCODED, decoded) is Reason.INVALID


@pytest.mark.parametrize("escape_early", EARLY)
def test_a_token_binds_one_spelling(escape_early: bool) -> None:
    token = library(ENCODED, escape_early)
    for other in ("/books/caf%c3%a9%20menu.png", "/books/caf\u00e9%20menu.png"):
        assert reason(escape_early, other, token) is Reason.INVALID, other


@pytest.mark.parametrize("escape_early", EARLY)
def test_an_escape_in_a_name_is_never_another_file(escape_early: bool) -> None:
    # The file "x%41.png" is sent as /books/x%2541.png; /books/x%41.png is "xA.png".
    literal, other = "/books/x%2541.png", "/books/x%41.png"
    assert reason(escape_early, literal, library(literal, escape_early)) is Reason.OK
    assert reason(escape_early, other, library(literal, escape_early)) is Reason.INVALID
    assert reason(escape_early, literal, library(other, escape_early)) is Reason.INVALID
    assert reason(escape_early, other, library("/books/xA.png", escape_early)) is Reason.INVALID
