"""What the console shows of keys: fingerprints always, the key only when revealed."""

from __future__ import annotations

import hashlib

from cryptography.hazmat.primitives import serialization

from sidecar import schemes
from sidecar.policy.settings import Mode, SourceSettings
from sidecar.runtime.console.keys import key_views, reveal
from sidecar.schemes.base import KeyKind, KeyMaterial, SourceSpec

TOKENS = {"2026-11": b"new-books-t0ken-0123456789", "2026-05": b"old-books-t0ken-9876543210"}


def _source(scheme_name: str, keys: tuple[KeyMaterial, ...], **settings: object) -> SourceSettings:
    scheme = schemes.get(scheme_name)
    assert scheme is not None
    built, problems = scheme.settings_from(settings)
    assert not problems
    spec = SourceSpec("books", "/books/", keys, built)
    verifier = scheme.build(spec)
    return SourceSettings("books", scheme_name, "/books/", None, Mode.ENFORCE, 403, verifier)


def md5_source() -> SourceSettings:
    keys = tuple(KeyMaterial(key_id, secret=token) for key_id, token in TOKENS.items())
    return _source("md5-token", keys, require_expires=False)


def test_shared_secret_keys_show_id_and_fingerprint_newest_first() -> None:
    views = key_views(md5_source())
    assert [view.id for view in views] == ["2026-11", "2026-05"]
    assert all(view.kind == KeyKind.SHARED_SECRET for view in views)
    assert views[0].fingerprint == hashlib.sha256(TOKENS["2026-11"]).hexdigest()[:12]
    assert all(TOKENS[view.id].decode() not in view.fingerprint for view in views)


def test_reveal_shows_the_token_of_the_key_asked_for_only() -> None:
    assert reveal(md5_source(), "2026-05") == (KeyKind.SHARED_SECRET, TOKENS["2026-05"].decode())
    assert reveal(md5_source(), "no-such-key") is None


def test_a_public_key_source_shows_the_public_key_as_pem() -> None:
    scheme = schemes.get("cloudfront")
    assert scheme is not None
    pair = scheme.new_key("ecdsa")
    assert pair.public_pem is not None
    source = _source(
        "cloudfront",
        (KeyMaterial("K2JCJMDEHXQW5F", public_key_pem=pair.public_pem),),
        public_origin="https://d111111abcdef8.cloudfront.net",
        accept_cookies=False,
    )
    (view,) = key_views(source)
    der = serialization.load_pem_public_key(pair.public_pem).public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    assert (view.id, view.kind) == ("K2JCJMDEHXQW5F", KeyKind.PUBLIC_KEY)
    assert view.fingerprint == hashlib.sha256(der).hexdigest()[:12]
    kind, text = reveal(source, "K2JCJMDEHXQW5F") or ("", "")
    assert kind == KeyKind.PUBLIC_KEY and text.startswith("-----BEGIN PUBLIC KEY-----")
    assert "PRIVATE" not in text


def test_a_source_without_keys_shows_none() -> None:
    source = SourceSettings("open", "md5-token", "/open/", None, Mode.OFF, 403, None)
    assert key_views(source) == []
    assert reveal(source, "any") is None
