"""Scheme ``akamai``: the shared contract, strict token parsing, ACLs, the conditions,
config problems, signing, and ``sidecar sign`` against ``akamai-edgeauth``."""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
import time
from pathlib import Path
from typing import Any, ClassVar

import pytest

from sidecar import config
from sidecar.cli import main
from sidecar.core.verdict import Reason
from sidecar.errors import ConfigError, SchemeError
from sidecar.schemes.akamai import escape, parse_token
from sidecar.schemes.base import KeyKind, KeyMaterial, SourceKey, SourceScheme
from tests.support.configs import sidecar_config, source_toml
from tests.support.reference_signers import library_tokens
from tests.support.scheme_contract import (
    NOW,
    Presented,
    SchemeContract,
    build_source,
    parse,
    request_uri,
    sign,
    verify,
)

KEY = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"


def source(*keys: str, **settings: Any) -> SourceScheme:
    materials = [KeyMaterial(f"k{i}", secret=key.encode()) for i, key in enumerate(keys or [KEY])]
    return build_source("akamai", materials, settings=settings)


def token_of(uri: str, name: str = "__token__") -> str:
    param = parse(uri).get(name)
    assert param is not None
    return param.value


def with_token(uri: str, token: str, name: str = "__token__") -> str:
    param = parse(uri).get(name)
    assert param is not None
    start = param.start + len(name) + 1
    return uri[:start] + token + uri[start + len(param.value) :]


class TestAkamai(SchemeContract):
    """A URL token (no ACL): bound to the request path.

    Hooks overridden, and why: the token is a structure (``exp=…~hmac=<hex>``), so the
    contract's signature helpers read and replace only its ``hmac`` field (replacing the
    whole value would change ``exp=`` and make every tamper ``malformed``). An Akamai token
    covers the path (or its ACL) but never the query: a changed, added or removed query
    parameter keeps the grant (``query_tampered_reason`` is ``ok``), and the
    "expired and tampered" check tampers the path instead of the first query value."""

    scheme_name = "akamai"
    signature_param = "__token__"
    bad_signature_values: ClassVar[tuple[str, ...]] = (
        "",
        "A" * 64,  # uppercase: EdgeAuth's hexdigest is lowercase
        "0" * 63,
        "0" * 65,
        "0" * 40,  # a SHA-1 length under sha256
        "g" * 64,
        "0x" + "0" * 62,
        "%30" + "0" * 61,
        "+" + "0" * 63,
    )

    @property
    def query_tampered_reason(self) -> Reason:
        return Reason.OK

    def key_material(self, key_id: str) -> KeyMaterial:
        return KeyMaterial(key_id, secret=secrets.token_hex(32).encode())

    def signature(self, presented: Presented) -> str:
        return token_of(presented.uri).rpartition("~hmac=")[2]

    def with_signature(self, presented: Presented, value: str) -> Presented:
        token = token_of(presented.uri)
        head = token.rpartition("~hmac=")[0]
        return presented._replace(uri=with_token(presented.uri, f"{head}~hmac={value}"))

    def test_expired_and_tampered_is_invalid_not_expired(self) -> None:
        verifier = self.single()
        signed = self.sign(verifier, expires=NOW - 100)
        path, _, query = signed.uri.partition("?")
        tampered = self.with_uri(signed, path.replace(".jpg", ".jpe") + "?" + query)
        assert self.verify(verifier, tampered).reason is Reason.INVALID
        assert self.verify(verifier, signed).reason is Reason.EXPIRED

    def test_signature_is_lowercase_hex_of_the_digest(self) -> None:
        assert re.fullmatch(r"[0-9a-f]{64}", self.signature(self.sign(self.single())))


class TestAkamaiAclToken(TestAkamai):
    """An ACL token whose glob covers the signed file only: a changed path leaves it."""

    settings: ClassVar[dict[str, Any]] = {"algorithm": "sha1"}
    bad_signature_values = ("", "A" * 40, "0" * 39, "0" * 64, "g" * 40)

    def grant(self, expires: int) -> dict[str, Any]:
        return {"expires": expires, "resource": "/books/*-internals.*g"}

    def test_signature_is_lowercase_hex_of_the_digest(self) -> None:
        signed = self.sign(self.single())
        assert "~acl=/books/*-internals.*g~" in signed.uri
        assert re.fullmatch(r"[0-9a-f]{40}", self.signature(signed))


# --- strict parsing ---------------------------------------------------------------------------


def _acl_uri(path: str = "/books/x.png", **grant: Any) -> str:
    return sign(source(), path, **{"expires": NOW + 60, "resource": "/books/*", **grant})


def _resigned(token_head: str, path: str = "/books/x.png") -> str:
    """A token with any head, signed correctly with KEY (to reach the checks after hmac)."""
    digest = hmac.new(bytes.fromhex(KEY), token_head.encode(), hashlib.sha256).hexdigest()
    return f"{path}?__token__={token_head}~hmac={digest}"


@pytest.mark.parametrize(
    "head",
    [
        "acl=/books/*~exp=1900000060",  # out of order
        "exp=1900000060~exp=1900000061~acl=/books/*",  # repeated
        "exp=1900000060~acl=",  # empty
        "exp=1900000060~acl=/books/*~foo=1",  # unknown
        "exp=1900000060~url=/books/x.png",  # url is signed, never carried
        "exp=1900000060~~acl=/books/*",  # an empty field
        "exp1900000060~acl=/books/*",  # no '='
        "acl=/books/*",  # no exp
        "exp=01900000060~acl=/books/*",  # a leading zero
        "exp=0~acl=/books/*",
        "st=0~exp=1900000060~acl=/books/*",
        "st=1900000060~exp=1900000060~acl=/books/*",  # exp not after st
        "st=1900000061~exp=1900000060~acl=/books/*",  # exp before st
        "exp=1900000060~acl=/books/*!!/public/*",  # an empty glob
        "exp=1900000060~acl=/books/*!",
        "ip=203.000.113.5~exp=1900000060~acl=/books/*",  # not the address's one spelling
        "ip=2001:DB8::1~exp=1900000060~acl=/books/*",
        "ip=nowhere~exp=1900000060~acl=/books/*",
        "exp=+1900000060~acl=/books/*",
    ],
)
def test_malformed_tokens(head: str) -> None:
    assert verify(source(), _resigned(head), NOW).reason is Reason.MALFORMED


def test_hmac_must_be_last_and_present() -> None:
    uri = _acl_uri()
    token = token_of(uri)
    head, _, digest = token.rpartition("~hmac=")
    moved = f"hmac={digest}~{head}"
    assert verify(source(), with_token(uri, moved)).reason is Reason.MALFORMED
    assert verify(source(), with_token(uri, head)).reason is Reason.MALFORMED
    assert verify(source(), with_token(uri, token + "~hmac=" + digest)).reason is Reason.MALFORMED


def test_parse_token_gives_the_signed_head() -> None:
    parsed = parse_token("ip=1.2.3.4~exp=5~acl=/a*!/b~id=x=y~data=z~hmac=ab", "~")
    assert parsed is not None
    assert parsed.head == "ip=1.2.3.4~exp=5~acl=/a*!/b~id=x=y~data=z"
    assert parsed.fields["id"] == "x=y"
    assert parse_token("exp=5~hmac=ab~", "~") is None


def test_token_parameter_spelling() -> None:
    uri = _acl_uri()
    assert verify(source(), uri).reason is Reason.OK
    path, _, query = uri.partition("?")
    assert verify(source(), f"{uri}&{query}").reason is Reason.NON_CANONICAL
    assert verify(source(), f"{uri}&__token__=x").reason is Reason.NON_CANONICAL
    encoded = f"{path}?%5F_token__={query.partition('=')[2]}"
    assert verify(source(), encoded).reason is Reason.MALFORMED
    assert verify(source(), f"{path}?__token__=").reason is Reason.MALFORMED
    assert verify(source(), path).reason is Reason.MISSING
    assert verify(source(), f"{path}?token={query.partition('=')[2]}").reason is Reason.MISSING


def test_a_percent_encoded_token_is_another_spelling() -> None:
    # The hmac covers the token as the signer wrote it; an encoded copy is not that text.
    uri = _acl_uri()
    encoded = with_token(uri, token_of(uri).replace("/", "%2F"))
    assert verify(source(), encoded).reason is Reason.INVALID


# --- ACLs and conditions -------------------------------------------------------------------


def test_acl_globs_cover_their_paths_only() -> None:
    uri = sign(source(), "/books/x.png", expires=NOW + 60, resource="/books/?.png")
    token = token_of(uri)
    for path, reason in [
        ("/books/x.png", Reason.OK),
        ("/books/y.png", Reason.OK),
        ("/books/xy.png", Reason.INVALID),
        ("/books/x.png.jpg", Reason.INVALID),
        ("/secret/x.png", Reason.INVALID),
        ("/books-other/x.png", Reason.INVALID),
    ]:
        assert verify(source(), f"{path}?__token__={token}").reason is reason, path


def test_star_crosses_segments_and_several_globs_are_any_of_them() -> None:
    uri = _resigned("exp=1900000060~acl=/secret/*!/books/*.png")
    token = token_of(uri)
    for path, reason in [
        ("/books/a/b/c.png", Reason.OK),
        ("/secret/x.png", Reason.OK),
        ("/books/a.jpg", Reason.INVALID),
        ("/public/x.png", Reason.INVALID),
    ]:
        assert verify(source(), f"{path}?__token__={token}").reason is reason, path


def test_acl_matches_the_decoded_path() -> None:
    uri = _resigned("exp=1900000060~acl=/books/caf\u00e9 *", "/books/caf%C3%A9%20menu.png")
    assert verify(source(), uri.replace("caf\u00e9 *", "caf\u00e9%20*")).reason is Reason.INVALID
    # The raw token text (as a client that keeps UTF-8 raw sends it) matches the decoded path.
    raw = "/books/caf%C3%A9%20menu.png?" + uri.partition("?")[2].replace(" ", "%20")
    assert verify(source(), raw).reason is Reason.INVALID  # the hmac covered a space


def test_a_long_hostile_acl_still_answers() -> None:
    # Pieces found with str.find (linear): the answer, not the time, is asserted.
    glob = "/books/" + "*.j" * 300 + "*.jpg"
    path = "/books/" + ".j" * 1500 + ".png"
    uri = _resigned(f"exp=1900000060~acl={glob}", path)
    assert verify(source(), uri).reason is Reason.INVALID
    good = _resigned(f"exp=1900000060~acl={glob}", path.replace(".png", ".jpg"))
    assert verify(source(), good).reason is Reason.OK


def test_not_before_with_clock_skew() -> None:
    uri = _acl_uri(not_before=NOW + 100, expires=NOW + 600)
    assert verify(source(), uri, NOW + 99).reason is Reason.NOT_YET_VALID
    assert verify(source(), uri, NOW + 100).reason is Reason.OK
    assert verify(source(), uri, NOW + 70, skew=30).reason is Reason.OK
    assert verify(source(), uri, NOW + 69, skew=30).reason is Reason.NOT_YET_VALID


@pytest.mark.parametrize("bound", ["203.0.113.5", "2001:db8::7"])
def test_ip_bound_tokens(bound: str) -> None:
    for settings in ({}, {"escape_early": True}):
        verifier = source(**settings)
        uri = sign(verifier, "/books/x.png", expires=NOW + 60, client_ip=bound)
        verdict = verify(verifier, uri, ip=bound)
        assert (verdict.reason, verdict.shareable) == (Reason.OK, False)
        assert verify(verifier, uri, ip="198.51.100.1").reason is Reason.IP_MISMATCH
        assert verify(verifier, uri, ip=None).reason is Reason.IP_MISMATCH
        assert verify(verifier, uri, ip="not-an-ip").reason is Reason.IP_MISMATCH
    assert "ip=2001%3adb8%3a%3a7~" in sign(source(escape_early=True), "/books/x.png",
                                            expires=NOW + 60, client_ip="2001:db8::7")  # fmt: skip


def test_forged_token_never_learns_its_conditions() -> None:
    # Expired, early and bound elsewhere, with a wrong hmac: only "invalid".
    uri = sign(source(), "/books/x.png", expires=NOW - 10, not_before=NOW - 100,
               client_ip="192.0.2.1")  # fmt: skip
    assert verify(source("ab" * 32), uri).reason is Reason.INVALID


def test_salt_custom_names_and_delimiters() -> None:
    verifier = source(salt="pepper", token_name="hdnts", field_delimiter="!",
                      acl_delimiter=",", algorithm="md5")  # fmt: skip
    uri = sign(verifier, "/books/x.png?w=1", expires=NOW + 60, resource="/books/*")
    assert re.fullmatch(r"/books/x\.png\?w=1&hdnts=exp=\d+!acl=/books/\*!hmac=[0-9a-f]{32}", uri)
    assert verify(verifier, uri).reason is Reason.OK
    assert verify(source(token_name="hdnts", field_delimiter="!", acl_delimiter=",",
                         algorithm="md5"), uri).reason is Reason.INVALID  # fmt: skip
    assert verify(verifier, uri.replace("hdnts=", "__token__=")).reason is Reason.MISSING


def test_escape_early_escapes_the_signed_url() -> None:
    plain, early = source(), source(escape_early=True)
    uri = "/books/caf%C3%A9%20menu.png"
    signed = sign(early, uri, expires=NOW + 60)
    assert verify(early, signed).reason is Reason.OK
    assert verify(plain, signed).reason is Reason.INVALID
    assert escape("/books/caf\u00e9 menu.png") == "%2fbooks%2fcaf%c3%a9+menu.png"


def test_rotated_keys_are_all_tried() -> None:
    old, new = "ab" * 16, "cd" * 32
    signed = sign(source(old), "/books/x.png", expires=NOW + 60)
    verdict = verify(source(new, old), signed)
    assert (verdict.reason, verdict.key_id) == (Reason.OK, "k1")


# --- signing ----------------------------------------------------------------------------------


def test_prefix_grant_is_an_acl() -> None:
    uri = sign(source(), "/books/x.png", expires=NOW + 60, prefix="/books/")
    assert "~acl=/books/*~" in uri
    assert verify(source(), "/books/database-internals.jpg?" + uri.partition("?")[2]).valid


@pytest.mark.parametrize(
    ("grant", "problem"),
    [
        ({}, "expiry"),
        ({"expires": NOW, "client_ip": "203.0.113.0/24"}, "not an IP address"),
        ({"expires": NOW, "not_before": NOW}, "before the expiry"),
        ({"expires": NOW, "resource": "/secret/*"}, "does not cover"),
        ({"expires": NOW, "resource": "/books/*", "prefix": "/books/"}, "either"),
        ({"expires": NOW, "resource": "/books/x.png!/secret/*"}, "ACL"),
        ({"expires": NOW, "resource": "/books/~*"}, "ACL"),
        ({"expires": NOW, "resource": "/books/caf\u00e9*"}, "ACL"),
        ({"expires": NOW, "resource": "/books/%78.png"}, "ACL"),
    ],
)
def test_sign_refuses_what_would_never_verify(grant: dict[str, Any], problem: str) -> None:
    with pytest.raises(SchemeError, match=problem):
        sign(source(), "/books/x.png", **grant)


def test_sign_refuses_a_url_already_carrying_the_token() -> None:
    with pytest.raises(SchemeError, match="already carries"):
        sign(source(), "/books/x.png?__token__=1", expires=NOW)


def test_shown_keys_are_the_configured_hex() -> None:
    shown = SourceKey("k0", KeyKind.SHARED_SECRET, KEY.upper().encode())
    assert source(KEY.upper()).key_material() == (shown,)


# --- config, CLI ------------------------------------------------------------------------------


def akamai_config(tmp_path: Path, key: str = KEY, **settings: Any) -> Path:
    text = sidecar_config(source_toml("edge", "akamai", "/books/", {"edge-1": {"secret": key}},
                                      **settings))  # fmt: skip
    path = tmp_path / "sidecar.toml"
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("key", "settings", "problem"),
    [
        (KEY[:-1], {}, "hex"),
        ("ab" * 15, {}, "hex"),  # 15 bytes: too short
        ("aB" * 16, {}, "hex"),  # mixed case
        ("zz" * 16, {}, "hex"),
        (KEY, {"algorithm": "SHA256"}, "sha256, sha1 or md5"),
        (KEY, {"algorithm": "sha512"}, "sha256, sha1 or md5"),
        (KEY, {"field_delimiter": "&"}, "must be one of"),
        (KEY, {"acl_delimiter": "~~"}, "must be one of"),
        (KEY, {"acl_delimiter": "~"}, "must differ"),
        (KEY, {"token_name": "a b"}, "A-Z"),
        (KEY, {"salt": ""}, "is empty"),
        (KEY, {"escape_early": "yes"}, "bool"),
    ],
)
def test_config_problems_are_reported(
    tmp_path: Path, key: str, settings: dict[str, Any], problem: str
) -> None:
    with pytest.raises(ConfigError) as raised:
        config.load(akamai_config(tmp_path, key, **settings))
    assert any(problem in line for line in raised.value.problems), raised.value.problems
    assert key[:16] not in str(raised.value)  # never the secret


@pytest.mark.parametrize(
    ("args", "spec"),
    [
        ([], {"url": "/books/x.png"}),
        (["--resource", "/books/*"], {"acl": ["/books/*"]}),
        (["--client-ip", "203.0.113.5", "--not-before", "1700000000"],
         {"url": "/books/x.png", "ip": "203.0.113.5", "start_time": 1700000000}),
    ],
)  # fmt: skip
def test_sidecar_sign_gives_the_librarys_token(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], spec: dict[str, Any]
) -> None:
    path = akamai_config(tmp_path, salt="pepper", algorithm="sha1")
    before = int(time.time())
    command = ["sign", "-c", str(path), "--source", "edge", "--expires-in", "600", *args]
    assert main([*command, "https://image.example.com/books/x.png?w=1"]) == 0
    out = capsys.readouterr().out.strip()
    found = re.search(r"exp=([0-9]+)", out)
    assert found is not None, out
    expires = int(found.group(1))
    assert before + 600 <= expires <= int(time.time()) + 600
    library = library_tokens([{"key": KEY, "expires": expires, "salt": "pepper",
                               "algorithm": "sha1", **spec}])[0]  # fmt: skip
    assert out == f"https://image.example.com/books/x.png?w=1&__token__={library}"
    verify_args = ["verify", "-c", str(path), "--at", str(expires - 1)]
    if "ip" in spec:
        verify_args += ["--client-ip", spec["ip"]]
    assert main([*verify_args, out]) == 0
    line = json.loads(capsys.readouterr().out)
    assert (line["source"], line["result"], line["key"]) == ("edge", "ok", "edge-1")


def test_token_new_makes_a_key_the_config_accepts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = akamai_config(tmp_path)
    assert main(["token", "new", "-c", str(path), "--source", "edge"]) == 0
    made = capsys.readouterr().out.strip()
    assert main(["token", "new", "--key-type", "akamai"]) == 0
    other = capsys.readouterr().out.strip()
    for key in (made, other):
        assert re.fullmatch(r"[0-9a-f]{64}", key)
    assert made != other
    path.write_text(path.read_text().replace(KEY, made))
    loaded = config.load(path).source("edge")
    assert loaded is not None and loaded.signatures is not None
    assert loaded.signatures.key_material() == (
        SourceKey("edge-1", KeyKind.SHARED_SECRET, made.encode()),
    )


def test_request_uri_helper_keeps_the_token() -> None:
    uri = request_uri("https://image.example.com" + _acl_uri())
    assert token_of(uri).startswith("exp=")
