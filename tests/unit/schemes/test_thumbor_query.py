"""Scheme ``thumbor``: a query the signature does not cover, as at thumbor's server.

thumbor's server checks the signature against the request's path alone (the query is not
part of it), so apps append cache busters (``?v=3``) to the URLs libthumbor makes. Such a
query cannot change which file is served: it is accepted, whatever it holds, once the URI
passes the canonical gate. A URL whose signature does cover a query (libthumbor given an
``image_url`` with one) keeps that query pinned.
"""

from __future__ import annotations

from typing import Any

import pytest
from libthumbor import CryptoURL  # type: ignore[import-untyped]  # no stubs, no py.typed

from sidecar.core import canonical
from sidecar.core.verdict import Reason
from sidecar.schemes.base import KeyMaterial, SourceScheme
from tests.support.scheme_contract import build_source, sign, verify

KEY = "thumbor-security-key-2026"
PREFIX = "/thumbs"
OPTIONS: tuple[dict[str, Any], ...] = (
    {"image_url": "books/a.jpg"},
    {"image_url": "books/a.jpg", "width": 300, "height": 200, "smart": True},
    {"image_url": "books/caf%C3%A9%20menu.png", "width": 120, "filters": ["quality(80)"]},
)
BUSTERS = ("?v=3", "?", "?v=3&w=1", "?v=%C3%A9", "?x=/a/b", "?v=3&v=4")


def verifier(key: str = KEY) -> SourceScheme:
    return build_source("thumbor", [KeyMaterial("k1", secret=key.encode())], prefix="/thumbs/")


def library(**options: Any) -> str:
    url: str = CryptoURL(key=KEY.encode()).generate(**options)
    return PREFIX + url


@pytest.mark.parametrize("buster", BUSTERS)
@pytest.mark.parametrize("options", OPTIONS)
def test_a_libthumbor_url_with_a_query_appended_verifies(
    options: dict[str, Any], buster: str
) -> None:
    served = library(**options) + buster
    assert canonical.parse(served) is not None
    verdict = verify(verifier(), served)
    # Before: invalid (the query was hashed with the path).
    assert (verdict.reason, verdict.key_id, verdict.expires_at) == (Reason.OK, "k1", None)
    assert verify(verifier("not-the-key"), served).reason is Reason.INVALID


def test_the_path_is_still_covered_with_a_query() -> None:
    served = library(image_url="books/a.jpg", width=300) + "?v=3"
    for changed in (
        served.replace("300x0", "301x0"),
        served.replace("a.jpg", "b.jpg"),
        served.replace("/books/", "/secret/"),
    ):
        assert verify(verifier(), changed).reason is Reason.INVALID, changed


def test_a_signed_query_stays_pinned() -> None:
    served = library(image_url="books/a.jpg?v=2", width=300)
    assert verify(verifier(), served).reason is Reason.OK
    for changed in (served.replace("v=2", "v=3"), served + "&v=3", served.partition("?")[0]):
        assert verify(verifier(), changed).reason is Reason.INVALID, changed


def test_the_signature_segment_is_read_as_before() -> None:
    served = library(image_url="books/a.jpg", width=300)
    signature = served.split("/")[2]
    # In the query, the signature's text is just a query value: thumbor's server never
    # looks there (it cuts "/<signature>/" out of the path only).
    assert verify(verifier(), f"{served}?x=/{signature}/").reason is Reason.OK
    holding = f"{PREFIX}/{signature}/300x0/{signature}/books/a.jpg?v=3"
    assert verify(verifier(), holding).reason is Reason.MALFORMED
    assert verify(verifier(), f"{PREFIX}/unsafe/300x0/books/a.jpg?v=3").reason is Reason.MISSING
    assert verify(verifier(), f"{PREFIX}/{signature}/?v=3").reason is Reason.MALFORMED
    assert verify(verifier(), f"{PREFIX}/300x0/books/a.jpg?v=3").reason is Reason.MALFORMED


def test_sign_still_covers_a_query_it_is_given() -> None:
    # libthumbor's URL byte for byte: its image_url's query is signed, and pinned.
    signed = sign(verifier(), "/thumbs/300x0/books/a.jpg?v=2")
    assert signed == library(image_url="books/a.jpg?v=2", width=300)
