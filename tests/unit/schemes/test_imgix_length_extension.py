"""Scheme ``imgix``: MD5(token + message) can be length-extended; the canonical gate keeps
the forgery out.

From one URL the imgix library signed, a forger who knows only the token's length computes
a valid signature for the signed text followed by MD5's padding and any suffix
(``&w=4000``). The forgery is built here for real, and shown to be the MD5 of the token and
the forged text. It is refused because the padding is bytes no request URI may carry:
0x80 (not UTF-8 on its own), NUL and other controls. Sent raw (as the listener decodes a
header: surrogate escapes), as Latin-1 text or percent-encoded, it never verifies.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pytest
from imgix import UrlBuilder  # type: ignore[import-untyped]  # no stubs, no py.typed

from sidecar import config
from sidecar.core import canonical
from sidecar.core.urls import parse_url
from sidecar.core.verdict import Reason
from sidecar.policy.decide import Decider, RequestFacts
from sidecar.schemes.imgix import signature
from tests.support.configs import sidecar_config, source_toml
from tests.support.md5_extension import extend, md5

TOKEN = "imgix-token-0123456789"
HOST = "image.example.com"
NOW = 1_900_000_000
SUFFIXES = (b"&w=4000", b"&expires=99999999999", b"/../secret.png", b"")


@pytest.fixture(scope="module")
def decider(tmp_path_factory: pytest.TempPathFactory) -> Decider:
    path: Path = tmp_path_factory.mktemp("imgix-extension") / "sidecar.toml"
    keys = {"k": {"secret": TOKEN}}
    path.write_text(sidecar_config(source_toml("books", "imgix", "/books/", keys)))
    return Decider(config.load(path, environ={}))


def library_uri(path: str, params: dict[str, Any]) -> str:
    builder = UrlBuilder(HOST, sign_key=TOKEN, use_https=True, include_library_param=False)
    url: str = builder.create_url(path, params)
    return parse_url(url).uri


def decided(decider: Decider, uri: str) -> Reason:
    return decider.decide(RequestFacts(uri, "GET", HOST, "198.51.100.7"), NOW).reason


def forge(signed_uri: str, suffix: bytes) -> tuple[bytes, str]:
    """(the forged message, its signature in hex) from a signed URI, without the token."""
    message, _, digest = signed_uri.rpartition("&s=")
    forged_digest, appended = extend(bytes.fromhex(digest), len(TOKEN) + len(message), suffix)
    return message.encode() + appended, forged_digest.hex()


def spellings(message: bytes, digest: str) -> dict[str, str]:
    """Every way the forged message could travel as a request URI."""
    tail = f"&s={digest}"
    return {
        "raw": message.decode("utf-8", "surrogateescape") + tail,  # as the listener reads it
        "latin-1": message.decode("latin-1") + tail,
        "percent-encoded": "".join(
            chr(byte) if 0x21 <= byte < 0x7F and byte not in b"%#\\" else f"%{byte:02X}"
            for byte in message
        )
        + tail,
    }


def test_the_md5_here_is_md5() -> None:
    for data in (b"", b"a", b"x" * 55, b"x" * 56, b"x" * 64, b"x" * 119, TOKEN.encode() * 9):
        assert md5(data) == hashlib.md5(data).digest()


@pytest.mark.parametrize("suffix", SUFFIXES)
def test_the_forgery_is_real_and_refused(decider: Decider, suffix: bytes) -> None:
    signed = library_uri("/books/x.png", {"w": 400})
    assert decided(decider, signed) is Reason.OK
    message, digest = forge(signed, suffix)
    # The forged signature IS imgix's signature of the forged text under the token: were
    # these bytes let through, the scheme would allow them.
    assert bytes.fromhex(digest) == hashlib.md5(TOKEN.encode() + message).digest()
    assert bytes.fromhex(digest) == signature(TOKEN.encode(), message)
    assert b"\x80" in message and message.endswith(suffix)
    forms = spellings(message, digest)
    # The gate refuses the bytes the forgery needs, in every spelling that carries them.
    assert canonical.parse(forms["raw"]) is None
    assert canonical.parse(forms["latin-1"]) is None
    assert decided(decider, forms["raw"]) is Reason.NON_CANONICAL
    assert decided(decider, forms["latin-1"]) is Reason.NON_CANONICAL
    # Percent-encoded, the URI passes the gate but is other bytes: not what was hashed.
    assert decided(decider, forms["percent-encoded"]) is Reason.INVALID


def test_with_an_expiry_too(decider: Decider) -> None:
    signed = library_uri("/books/x.png", {"w": 400, "expires": NOW + 60})
    assert decided(decider, signed) is Reason.OK
    message, digest = forge(signed, b"&expires=99999999999")
    assert bytes.fromhex(digest) == signature(TOKEN.encode(), message)
    for spelled in spellings(message, digest).values():
        assert decided(decider, spelled) is not Reason.OK, spelled
