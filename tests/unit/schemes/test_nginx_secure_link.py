"""Scheme ``nginx-secure-link``: the shared contract, nginx's known answers, the template
compiler and the spellings refused where nginx is lenient.

The vectors (``vectors/nginx_secure_link.json``) hold real nginx's answers; the end-to-end
test ``tests/process/test_e2e_nginx_secure_link.py`` asks real nginx again for each one.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

import pytest

from sidecar import schemes
from sidecar.core.verdict import Reason
from sidecar.errors import SchemeError
from sidecar.schemes.base import KeyMaterial, SourceScheme, SourceSpec, VerifyRequest
from sidecar.schemes.nginx_secure_link import LITERAL, Part, SecureLinkSettings, compile_template
from tests.support.scheme_contract import NOW, SchemeContract, build_source, parse, sign

VECTORS = json.loads(
    (Path(__file__).parent / "vectors" / "nginx_secure_link.json").read_text("utf-8")
)
DOCS_TEMPLATE = "$secure_link_expires$uri$remote_addr $secret"
_fresh = itertools.count()


def b64(expression: str) -> str:
    """The nginx docs' signer: ``openssl md5 -binary | openssl base64 | tr +/ -_ | tr -d =``."""
    digest = hashlib.md5(expression.encode()).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def verifier(*secrets: str, **settings: Any) -> SourceScheme:
    keys = [KeyMaterial(f"k{i}", secret=secret.encode()) for i, secret in enumerate(secrets)]
    return build_source("nginx-secure-link", keys, prefix="/", settings=settings)


def reason(
    source: SourceScheme, uri: str, now: float = NOW, *, ip: str | None = "127.0.0.1",
    host: str | None = "image.example.com", skew: int = 0,
) -> Reason:  # fmt: skip
    return source.verify(VerifyRequest(parse(uri), now, skew, ip, None, host)).reason


class TestNginxSecureLink(SchemeContract):
    scheme_name = "nginx-secure-link"
    # The query parameters the contract's URL carries are covered through $arg_NAME.
    settings: ClassVar[Mapping[str, Any]] = {
        "secure_link_md5": "$secure_link_expires$uri$arg_w$arg_h$arg_fit $secret"
    }
    signature_param = "md5"
    bad_signature_values = (
        "",
        "A" * 21,
        "A" * 23,
        "A" * 24,  # 18 bytes
        "+" * 22,  # the standard alphabet is not nginx's
        "/" * 22,
        "A" * 21 + "B",  # non-zero unused bits: nginx ignores them, one spelling does not
        "A" * 22 + "=",
        "A" * 22 + "=x",  # nginx stops at '='
        "A" * 22 + "%3D%3D",
        "%41" * 22,
        "A" * 20 + "==",
    )

    def key_material(self, key_id: str) -> KeyMaterial:
        return KeyMaterial(key_id, secret=f"secret-{next(_fresh)}".encode())

    def test_expiry_edges(self) -> None:
        # nginx's answer at the boundary: "0" only once expires < now (whole seconds), so
        # the link still serves at now == expires, and through that second.
        source = self.single()
        expires = NOW + 10
        signed = self.sign(source, expires=expires)
        for now, expected in ((expires - 1, Reason.OK), (expires, Reason.OK),
                              (expires + 0.999, Reason.OK), (expires + 1, Reason.EXPIRED),
                              (expires + 86400, Reason.EXPIRED)):  # fmt: skip
            assert self.verify(source, signed, now).reason is expected, now

    def test_expiry_with_clock_skew(self) -> None:
        # A skew of s seconds allows s seconds more than nginx does, not s - 1.
        source = self.single()
        expires = NOW + 10
        signed = self.sign(source, expires=expires)
        assert self.verify(source, signed, expires + 30, skew=30).reason is Reason.OK
        assert self.verify(source, signed, expires + 31, skew=30).reason is Reason.EXPIRED

    def test_added_param(self) -> None:
        # nginx covers only what secure_link_md5 names: a new parameter is not covered
        # (the end-to-end test shows nginx says "1" too); a second covered one is refused.
        source = self.single()
        signed = self.sign(source)
        path, _, query = signed.uri.partition("?")
        assert self.verify(source, self.with_uri(signed, f"{path}?extra=1&{query}")).valid
        repeated = self.with_uri(signed, f"{path}?w=1&{query}")
        assert self.verify(source, repeated).reason is Reason.NON_CANONICAL


# --- real nginx's known answers -----------------------------------------------------------


def _vector_id(vector: dict[str, Any]) -> str:
    return str(vector["description"]).replace(" ", "-")


def test_vectors_file_is_substantial() -> None:
    assert VECTORS["scheme"] == "nginx-secure-link"
    answers = [vector["nginx"] for vector in VECTORS["vectors"]]
    assert len(answers) >= 20
    assert {"1", "0", ""} <= set(answers)


@pytest.mark.parametrize("vector", VECTORS["vectors"], ids=_vector_id)
def test_vector_verify(vector: dict[str, Any]) -> None:
    source = verifier(vector["secret"], secure_link=vector["secure_link"],
                      secure_link_md5=vector["secure_link_md5"])  # fmt: skip
    got = reason(source, vector["uri"], VECTORS["nginx_now"], ip=vector["client_ip"],
                 host=vector["host"])  # fmt: skip
    assert got is Reason(vector["reason"])
    # Never an allow nginx would not give, and the same allow where it is the one spelling.
    assert got is not Reason.OK or vector["nginx"] == "1"
    if vector["nginx"] == "0":
        assert got in (Reason.EXPIRED, Reason.MALFORMED)


@pytest.mark.parametrize(
    "vector", [v for v in VECTORS["vectors"] if "unsigned" in v], ids=_vector_id
)
def test_vector_sign(vector: dict[str, Any]) -> None:
    source = verifier(vector["secret"], secure_link=vector["secure_link"],
                      secure_link_md5=vector["secure_link_md5"])  # fmt: skip
    ip = vector["client_ip"] if "$remote_addr" in vector["secure_link_md5"] else None
    signed = sign(source, vector["unsigned"], expires=vector["expires"], client_ip=ip)
    assert signed.removeprefix("https://" + vector["host"]) == vector["uri"]


# --- the template compiler ------------------------------------------------------------------


def test_compiler_reads_nginx_variables() -> None:
    assert compile_template("${URI}x$arg_W-$secret") == (
        Part("uri"), Part(LITERAL, "x"), Part("arg_", "w"), Part(LITERAL, "-"), Part("secret"),
    )  # fmt: skip
    assert compile_template("$host$secure_link_expires") == (
        Part("host"), Part("secure_link_expires"),
    )  # fmt: skip


@pytest.mark.parametrize(
    "template",
    ["$request_uri", "$args", "$http_x", "$cookie_a", "$1", "${uri", "$", "a$-", "$arg_", "${}"],
)
def test_compiler_refuses_what_it_cannot_know(template: str) -> None:
    with pytest.raises(SchemeError):
        compile_template(template)


@pytest.mark.parametrize(
    ("settings", "problem"),
    [
        ({"secure_link_md5": "$secure_link_expires$uri"}, "secret"),
        ({"secure_link_md5": "$secure_link_expires$host $secret"}, "uri"),
        ({"secure_link_md5": "$uri $secret"}, "expiry"),
        ({"secure_link_md5": "$secure_link_expires$uri$arg_md5$secret"}, "hash itself"),
        ({"secure_link": "$arg_md5", "secure_link_md5": DOCS_TEMPLATE}, "no expiry"),
        ({"secure_link": "$arg_md5,$arg_md5"}, "secure_link"),
        ({"secure_link": "$cookie_md5,$arg_e"}, "unsupported"),
        ({"secure_link": "$arg_md5;$arg_e"}, "secure_link"),
        ({"secure_link_md5": "$request_uri $secret"}, "unsupported"),
    ],
)
def test_build_refuses_weak_or_unknown_templates(settings: dict[str, str], problem: str) -> None:
    with pytest.raises(SchemeError, match=problem):
        verifier("s", **settings)


def test_setting_checks_report_unsupported_variables() -> None:
    scheme = schemes.get("nginx-secure-link")
    assert scheme is not None
    checks = {setting.name: setting.check for setting in scheme.settings}
    assert all(checks.values())
    link, md5 = checks["secure_link"], checks["secure_link_md5"]
    assert link is not None and md5 is not None
    assert link("$arg_md5,$arg_expires") is None
    assert "secure_link" in (link("$arg_md5 $arg_e") or "")
    assert md5(DOCS_TEMPLATE) is None
    assert "$http_referer" in (md5("$uri$http_referer$secret") or "")


# --- verification specifics -------------------------------------------------------------------


def docs_url(expires: int = NOW + 60, ip: str = "127.0.0.1", secret: str = "s3cret") -> str:
    return f"/s/link?md5={b64(f'{expires}/s/link{ip} {secret}')}&expires={expires}"


def test_docs_example_verifies_and_is_bound_to_the_address() -> None:
    source = verifier("s3cret")
    verdict = source.verify(VerifyRequest(parse(docs_url()), NOW, 0, "127.0.0.1"))
    assert (verdict.reason, verdict.key_id, verdict.expires_at) == (Reason.OK, "k0", NOW + 60)
    assert verdict.shareable is False  # $remote_addr: never served to another client
    assert reason(source, docs_url(), ip="127.0.0.2") is Reason.INVALID
    assert reason(source, docs_url(), ip=None) is Reason.INVALID


def test_host_is_covered_and_shareable() -> None:
    source = verifier("k", secure_link_md5="$secure_link_expires$host$uri $secret")
    uri = f"/a.png?md5={b64(f'{NOW + 9}image.example.com/a.png k')}&expires={NOW + 9}"
    verdict = source.verify(VerifyRequest(parse(uri), NOW, 0, None, None, "image.example.com"))
    assert verdict.valid and verdict.shareable
    assert reason(source, uri, host="other.example.com") is Reason.INVALID
    assert reason(source, uri, host=None) is Reason.INVALID


def test_every_key_is_tried_and_the_match_named() -> None:
    source = verifier("new", "old")
    for secret, key_id in (("new", "k0"), ("old", "k1")):
        uri = docs_url(secret=secret)
        verdict = source.verify(VerifyRequest(parse(uri), NOW, 0, "127.0.0.1"))
        assert (verdict.reason, verdict.key_id) == (Reason.OK, key_id)
    assert reason(source, docs_url(secret="other")) is Reason.INVALID


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda u: u.replace("md5=", "MD5="), Reason.MALFORMED),
        (lambda u: u.replace("md5=", "%6Dd5="), Reason.MALFORMED),
        (lambda u: u.replace("expires=", "Expires="), Reason.MALFORMED),
        (lambda u: u + "&md5=zz", Reason.NON_CANONICAL),
        (lambda u: u + "&EXPIRES=1", Reason.NON_CANONICAL),
        (lambda u: u.replace("&expires=", "==&expires="), Reason.OK),  # urlsafe_b64encode
        (lambda u: u.partition("&expires")[0], Reason.MISSING),
        (lambda u: u.partition("?")[0] + "?" + u.partition("&")[2], Reason.MISSING),
        (lambda u: u.replace("expires=", "expires=0"), Reason.MALFORMED),  # nginx reads it
        (lambda u: u.replace("expires=", "expires=+"), Reason.MALFORMED),
        (lambda u: u.replace("expires=", "expires=-"), Reason.MALFORMED),
        (lambda u: u.rpartition("=")[0] + "=", Reason.MALFORMED),
        (lambda u: u.rpartition("=")[0] + "=1e9", Reason.MALFORMED),
    ],
)
def test_spellings(change: Any, expected: Reason) -> None:
    assert reason(verifier("s3cret"), change(docs_url())) is expected


def test_expiry_zero_is_malformed_as_nginx_refuses_it() -> None:
    source = verifier("s3cret")
    uri = f"/s/link?md5={b64('0/s/link127.0.0.1 s3cret')}&expires=0"
    assert reason(source, uri) is Reason.MALFORMED


def test_without_expiry() -> None:
    source = verifier("k", secure_link="${arg_h}", secure_link_md5="$uri$arg_w $secret")
    uri = f"/a.png?w=5&h={b64('/a.png5 k')}"
    verdict = source.verify(VerifyRequest(parse(uri), 4e9, 0))
    assert (verdict.reason, verdict.expires_at, verdict.shareable) == (Reason.OK, None, True)
    assert sign(source, "/a.png?w=5") == uri
    with pytest.raises(SchemeError, match="no expiry"):
        sign(source, "/a.png", expires=NOW)


def test_bare_covered_parameter_is_malformed() -> None:
    source = verifier("k", secure_link_md5="$secure_link_expires$uri$arg_w $secret")
    uri = f"/a.png?w&md5={b64(f'{NOW}/a.png k')}&expires={NOW}"
    assert reason(source, uri, NOW - 1) is Reason.MALFORMED


# --- signing ---------------------------------------------------------------------------------


def test_sign_the_docs_example() -> None:
    signed = sign(verifier("s3cret"), "/s/link", expires=2147483647, client_ip="127.0.0.1")
    # The docs: echo -n '2147483647/s/link127.0.0.1 secret' | openssl md5 -binary | ...
    assert signed == f"/s/link?md5={b64('2147483647/s/link127.0.0.1 s3cret')}&expires=2147483647"


def test_sign_refuses_what_it_cannot_know() -> None:
    source = verifier("s3cret")
    with pytest.raises(SchemeError, match="remote_addr"):
        sign(source, "/a.png", expires=NOW)
    with pytest.raises(SchemeError, match="expiry"):
        sign(source, "/a.png", client_ip="127.0.0.1")
    with pytest.raises(SchemeError, match="IP address"):
        sign(source, "/a.png", expires=NOW, client_ip="10.0.0.0/8")
    with pytest.raises(SchemeError, match="not_before"):
        sign(source, "/a.png", expires=NOW, client_ip="127.0.0.1", not_before=NOW)
    with pytest.raises(SchemeError, match="already carries"):
        sign(source, "/a.png?md5=x", expires=NOW, client_ip="127.0.0.1")
    with pytest.raises(SchemeError, match="already carries"):
        sign(source, "/a.png?EXPIRES=1", expires=NOW, client_ip="127.0.0.1")
    hosted = verifier("k", secure_link_md5="$secure_link_expires$host$uri $secret")
    with pytest.raises(SchemeError, match="absolute"):
        sign(hosted, "/a.png", expires=NOW)
    with pytest.raises(SchemeError, match="client_ip"):
        sign(hosted, "https://image.example.com/a.png", expires=NOW, client_ip="127.0.0.1")


def test_sign_ipv6_in_nginx_spelling() -> None:
    source = verifier("s3cret")
    signed = sign(source, "/a.png", expires=NOW + 5, client_ip="2001:DB8:0:0::1")
    assert reason(source, signed, ip="2001:db8::1") is Reason.OK


def test_sign_host_from_the_url() -> None:
    source = verifier("k", secure_link_md5="$secure_link_expires$host$uri $secret")
    signed = sign(source, "https://Image.Example.com:8443/a.png", expires=NOW + 5)
    assert signed.startswith("https://Image.Example.com:8443/a.png?md5=")
    uri = signed.removeprefix("https://Image.Example.com:8443")
    assert reason(source, uri, host="image.example.com") is Reason.OK


def test_scheme_declarations() -> None:
    scheme = schemes.get("nginx-secure-link")
    assert scheme is not None
    assert scheme.default_deny_status == 403
    assert scheme.key_fields == frozenset({"secret"})
    assert scheme.key_ids_in_url is False
    token = scheme.new_key("token").secret
    assert token is not None and len(token) >= 43


def test_build_refuses_key_without_secret() -> None:
    scheme = schemes.get("nginx-secure-link")
    assert scheme is not None
    with pytest.raises(SchemeError, match="k2"):
        keys = (KeyMaterial("k1", secret=b"x"), KeyMaterial("k2"))
        scheme.build(SourceSpec("s", "/", keys, SecureLinkSettings()))


def test_repr_hides_secrets() -> None:
    assert "super-secret-value" not in repr(verifier("super-secret-value"))
