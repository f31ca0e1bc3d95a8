"""Scheme ``imgix``: the shared contract, URLs built by the imgix library, vectors, CLI."""

from __future__ import annotations

import hashlib
import itertools
import json
from pathlib import Path
from typing import Any

import pytest
from imgix import UrlBuilder  # type: ignore[import-untyped]  # no stubs, no py.typed

from sidecar import cli, schemes
from sidecar.core.verdict import Reason
from sidecar.errors import SchemeError
from sidecar.schemes.base import KeyMaterial, SourceScheme
from tests.support.configs import sidecar_config, source_toml
from tests.support.scheme_contract import SchemeContract, build_source, request_uri, sign
from tests.support.scheme_contract import verify as verify_verdict

VECTORS = json.loads((Path(__file__).parent / "vectors" / "imgix.json").read_text("utf-8"))
DOMAIN = "image.example.com"
ORIGIN = f"https://{DOMAIN}"
TOKEN = "imgix-token-0123456789"
NOW = 1_700_000_000
_fresh = itertools.count()


def verifier_for(*tokens: str) -> SourceScheme:
    keys = [KeyMaterial(f"k{i}", secret=token.encode()) for i, token in enumerate(tokens)]
    return build_source("imgix", keys)


def verify(verifier: SourceScheme, uri: str, now: float = NOW) -> Reason:
    return verify_verdict(verifier, request_uri(uri), now).reason


def library_url(token: str, path: str, params: dict[str, Any]) -> str:
    builder = UrlBuilder(DOMAIN, sign_key=token, use_https=True, include_library_param=False)
    url: str = builder.create_url(path, params)
    return url


def unsigned_of(url: str) -> str:
    """The URL without its trailing ``s`` parameter (what the library signed)."""
    head, mark, _ = url.rpartition("&s=")
    return head if mark else url.rpartition("?s=")[0]


class TestImgix(SchemeContract):
    scheme_name = "imgix"
    signature_param = "s"
    bad_signature_values = (
        "",
        "0" * 33,
        "0" * 31,
        "g" * 32,
        "A" * 32,  # uppercase: imgix's signers print lowercase only
        "0x" + "0" * 30,
        "%37d0d58f62c945d0ca08269205228bbe",
        "+" * 32,
        "7d0d58f62c945d0ca08269205228bbe7" * 2,
    )

    def key_material(self, key_id: str) -> KeyMaterial:
        return KeyMaterial(key_id, secret=f"imgix-token-{next(_fresh)}".encode())


# --- known answers, made by the imgix library ----------------------------------------------


def _vector_ids(vector: dict[str, Any]) -> str:
    return str(vector["description"]).replace(" ", "-")


def test_vectors_file_is_substantial() -> None:
    assert VECTORS["scheme"] == "imgix"
    assert len(VECTORS["vectors"]) >= 10
    assert any("expires" in vector["params"] for vector in VECTORS["vectors"])


@pytest.mark.parametrize("vector", VECTORS["vectors"], ids=_vector_ids)
def test_vector_agrees_with_the_library(vector: dict[str, Any]) -> None:
    # Guards the vectors file: the imgix library, run now, builds the same URL.
    assert library_url(vector["token"], vector["path"], vector["params"]) == vector["expected_url"]


@pytest.mark.parametrize("vector", VECTORS["vectors"], ids=_vector_ids)
def test_vector_verifies(vector: dict[str, Any]) -> None:
    url = vector["expected_url"]
    verdict = verify_verdict(verifier_for(vector["token"]), request_uri(url), NOW)
    assert verdict.reason is Reason.OK
    assert verdict.expires_at == vector["params"].get("expires")
    assert verify(verifier_for(vector["token"] + "x"), url) is Reason.INVALID


@pytest.mark.parametrize("vector", VECTORS["vectors"], ids=_vector_ids)
def test_vector_sign(vector: dict[str, Any]) -> None:
    # Signing what the library signed gives the library's URL, byte for byte.
    url = vector["expected_url"]
    assert sign(verifier_for(vector["token"]), unsigned_of(url)) == url


def test_expires_the_library_signed_is_enforced() -> None:
    url = library_url(TOKEN, "/books/x.png", {"w": 200, "expires": NOW + 10})
    verifier = verifier_for(TOKEN)
    assert "expires=" in url.partition("?")[2]
    assert verify(verifier, url, NOW + 9) is Reason.OK
    assert verify(verifier, url, NOW + 10) is Reason.EXPIRED
    assert verify_verdict(verifier, request_uri(url), NOW + 39, skew=30).reason is Reason.OK
    assert verify_verdict(verifier, request_uri(url), NOW + 40, skew=30).reason is Reason.EXPIRED


PATHS = (
    "/books/x.png",
    "books/x.png",
    "/books/my first book.jpg",
    "/books/café menu.png",
    "/books/日本語/画像.webp",
    "/books/100%+pure.jpg",
    "/books/a&b=c$d@e,f.png",
    "/books/it's (1)!*~.png",
    "/books/q?x#y.png",
)
PARAMS: tuple[dict[str, Any], ...] = (
    {},
    {"w": 400},
    {"w": 400, "h": 600, "fit": "crop", "auto": "format,compress"},
    {"txt": "a+b c&d=e/f?g#h%i", "txt-font": "Futura Condensed Medium"},
    {"txt64": "Hello, Wörld! ~?", "mark64": "https://assets.example.com/logo.png?x=1"},
    {"blend64": "", "w": 0, "flip": True},
    {"expires": NOW + 3600},
    {"expires": NOW + 3600, "w": 300, "txt": "ünïcode"},
    {"my key": "v/w", "ключ": "значение"},
)


def test_every_library_url_verifies() -> None:
    verifier = verifier_for(TOKEN, "an-older-token")
    checked = 0
    for path, params in itertools.product(PATHS, PARAMS):
        url = library_url(TOKEN, path, params)
        verdict = verify_verdict(verifier, request_uri(url), NOW)
        assert (verdict.reason, verdict.key_id) == (Reason.OK, "k0"), url
        # Our signer, given what the library signed, makes the library's URL.
        assert sign(verifier, unsigned_of(url)) == url
        checked += 1
    assert checked == len(PATHS) * len(PARAMS) == 81


def test_library_urls_signed_with_an_older_token_name_it() -> None:
    url = library_url("an-older-token", "/books/x.png", {"w": 1})
    verdict = verify_verdict(verifier_for(TOKEN, "an-older-token"), request_uri(url), NOW)
    assert (verdict.reason, verdict.key_id) == (Reason.OK, "k1")


# --- imgix specifics ---------------------------------------------------------------------


def test_token_comes_first() -> None:
    signed = sign(verifier_for("tok"), "/books/a.jpg?w=1")
    assert signed == f"/books/a.jpg?w=1&s={hashlib.md5(b'tok/books/a.jpg?w=1').hexdigest()}"
    token_last = hashlib.md5(b"/books/a.jpg?w=1tok").hexdigest()
    assert verify(verifier_for("tok"), f"/books/a.jpg?w=1&s={token_last}") is Reason.INVALID


def test_no_query_signs_the_path_alone() -> None:
    signed = sign(verifier_for("tok"), "/books/a.jpg")
    assert signed == f"/books/a.jpg?s={hashlib.md5(b'tok/books/a.jpg').hexdigest()}"
    assert sign(verifier_for("tok"), "/books/a.jpg?") == signed


def _first_letter_upper(digest: str) -> str:
    index = next(i for i, char in enumerate(digest) if char.isalpha())
    return digest[:index] + digest[index].upper() + digest[index + 1 :]


@pytest.mark.parametrize("case", [str.upper, _first_letter_upper])
def test_uppercase_hex_is_malformed(case: Any) -> None:
    url = library_url(TOKEN, "/books/x.png", {"w": 1})
    head, _, digest = url.rpartition("=")
    respelled = f"{head}={case(digest)}"
    assert respelled != url
    assert verify(verifier_for(TOKEN), url) is Reason.OK
    assert verify(verifier_for(TOKEN), respelled) is Reason.MALFORMED


def test_signature_not_last_is_malformed() -> None:
    url = library_url(TOKEN, "/books/x.png", {"w": 1})
    assert verify(verifier_for(TOKEN), url + "&x=1") is Reason.MALFORMED


def test_encoded_signature_name_is_malformed() -> None:
    url = library_url(TOKEN, "/books/x.png", {"w": 1})
    assert verify(verifier_for(TOKEN), url.replace("&s=", "&%73=")) is Reason.MALFORMED


@pytest.mark.parametrize(
    "unsigned",
    [
        "/books/x.png?s=00000000000000000000000000000000&w=1",  # a second signature
        "/books/x.png?expires=1900000000&expires=1900000001&w=1",
    ],
)
def test_duplicated_signing_params_are_non_canonical(unsigned: str) -> None:
    # Correctly signed over every byte, still refused: one spelling per signed URL.
    digest = hashlib.md5(f"{TOKEN}{unsigned}".encode()).hexdigest()
    assert verify(verifier_for(TOKEN), f"{unsigned}&s={digest}") is Reason.NON_CANONICAL


@pytest.mark.parametrize("expires", ["01900000000", "+1900000000", "1.5", "", "abc", "1e9"])
def test_badly_spelled_expires_is_malformed(expires: str) -> None:
    # Not what a signer makes; even correctly signed, it has no one reading.
    unsigned = f"/books/x.png?expires={expires}"
    digest = hashlib.md5(f"{TOKEN}{unsigned}".encode()).hexdigest()
    assert verify(verifier_for(TOKEN), f"{unsigned}&s={digest}") is Reason.MALFORMED


def test_sign_with_expiry_appends_it() -> None:
    verifier = verifier_for(TOKEN)
    signed = sign(verifier, "/books/x.png?w=1", expires=NOW + 60)
    assert signed.startswith("/books/x.png?w=1&expires=1700000060&s=")
    verdict = verify_verdict(verifier, signed, NOW)
    assert (verdict.reason, verdict.expires_at) == (Reason.OK, NOW + 60)


@pytest.mark.parametrize(
    ("url", "grant"),
    [
        ("/books/x.png?s=abc", {}),
        ("/books/x.png?expires=1900000000", {"expires": 1900000001}),  # two expiries
        ("/books/x.png?expires=01900000000", {}),
        ("/books/x.png?%65xpires=1900000000", {}),
        ("/books/x.png?expires=1&expires=2", {}),
        ("/books/x.png", {"not_before": 1}),
        ("/books/x.png", {"client_ip": "203.0.113.5"}),
        ("/books/x.png", {"cookies": True}),
    ],
)
def test_sign_refuses_what_would_never_verify(url: str, grant: dict[str, Any]) -> None:
    with pytest.raises(SchemeError):
        sign(verifier_for(TOKEN), url, **grant)


def test_scheme_declarations() -> None:
    scheme = schemes.get("imgix")
    assert scheme is not None
    assert scheme.default_deny_status == 403
    assert scheme.key_fields == frozenset({"secret"})
    assert scheme.key_types == ("token",)
    assert scheme.key_ids_in_url is False
    first, second = scheme.new_key("token").secret, scheme.new_key("token").secret
    assert first and second and first != second and len(first) >= 43


def test_build_refuses_key_without_secret() -> None:
    with pytest.raises(SchemeError, match="k2"):
        build_source("imgix", [KeyMaterial("k1", secret=b"x"), KeyMaterial("k2")])


def test_repr_hides_tokens() -> None:
    assert "super-secret-imgix" not in repr(verifier_for("super-secret-imgix"))


# --- the command line signs what the library signs ------------------------------------------


def test_cli_sign_matches_the_library(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "sidecar.toml"
    config.write_text(
        sidecar_config(source_toml("books", "imgix", "/books/", {"k": {"secret": TOKEN}}))
    )
    for params in ({"w": 400, "h": 600, "fit": "crop"}, {"expires": 2_000_000_000, "w": 1}):
        expected = library_url(TOKEN, "/books/café menu.png", params)
        code = cli.main(["sign", "-c", str(config), "--source", "books", unsigned_of(expected)])
        assert code == 0
        assert capsys.readouterr().out.strip() == expected


def test_cli_sign_with_expires_in(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "sidecar.toml"
    config.write_text(
        sidecar_config(source_toml("books", "imgix", "/books/", {"k": {"secret": TOKEN}}))
    )
    code = cli.main(["sign", "-c", str(config), "--source", "books", "--expires-in", "60",
                     ORIGIN + "/books/x.png?w=1"])  # fmt: skip
    assert code == 0
    signed = capsys.readouterr().out.strip()
    unsigned, _, digest = signed.removeprefix(ORIGIN).rpartition("&s=")
    assert unsigned.startswith("/books/x.png?w=1&expires=")
    assert digest == hashlib.md5(f"{TOKEN}{unsigned}".encode()).hexdigest()
