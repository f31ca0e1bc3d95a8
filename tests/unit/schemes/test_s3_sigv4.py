"""Scheme ``s3-sigv4``: the shared contract, AWS's documented presigned URL, and every
signing parameter read in its one spelling (the reference signers: test_s3_sigv4_signers)."""

from __future__ import annotations

import json
import secrets
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

import pytest

from sidecar.core.verdict import Reason
from sidecar.errors import SchemeError
from sidecar.policy.signing import sign_request
from sidecar.schemes import sigv4
from sidecar.schemes.base import Grant, KeyMaterial, SourceScheme
from sidecar.schemes.s3_sigv4 import DERIVED_KEYS_KEPT, S3SigV4Source
from tests.support.scheme_contract import NOW, SchemeContract, build_source, sign
from tests.support.scheme_contract import verify as verify_verdict

VECTORS = json.loads((Path(__file__).parent / "vectors" / "s3_sigv4.json").read_text("utf-8"))
ORIGIN = "https://media.example.com"
SETTINGS = {"region": "eu-west-1", "public_origin": ORIGIN}
SIGNED_AT = NOW - 60


def key(key_id: str = "AKIAEXAMPLE0000001", secret: str | None = None) -> KeyMaterial:
    return KeyMaterial(key_id, secret=(secret or secrets.token_urlsafe(30)).encode())


def source(*keys: KeyMaterial, **settings: Any) -> SourceScheme:
    return build_source("s3-sigv4", keys or (key(),), prefix="/books/",
                        settings={**SETTINGS, **settings})  # fmt: skip


def presign(verifier: SourceScheme, url: str = "/books/a.jpg?w=400", *, lifetime: int = 3600,
            signed_at: int = SIGNED_AT) -> str:  # fmt: skip
    return sign(verifier, url, expires=signed_at + lifetime, not_before=signed_at)


def reason(verifier: SourceScheme, uri: str, now: float = NOW, skew: int = 0) -> Reason:
    return verify_verdict(verifier, uri, now, skew=skew).reason


def replaced(uri: str, name: str, value: str) -> str:
    """``uri`` with the raw value of its parameter ``name`` replaced."""
    head, _, rest = uri.partition(f"{name}=")
    _, amp, tail = rest.partition("&")
    return f"{head}{name}={value}{amp}{tail}"


class TestS3SigV4(SchemeContract):
    scheme_name = "s3-sigv4"
    settings = SETTINGS
    signature_param = "X-Amz-Signature"
    bad_signature_values = (
        "x",
        "a" * 63,
        "a" * 65,  # padded
        "A" * 64,  # uppercase hex: not what a SigV4 signer writes
        "g" * 64,
        "a" * 62 + "%61",
        "",
    )

    def key_material(self, key_id: str) -> KeyMaterial:
        return key("AKIA" + key_id.upper().ljust(12, "0"))

    def grant(self, expires: int) -> dict[str, Any]:
        # X-Amz-Date is the grant's not-before: an hour before its expiry (earlier for
        # an already expired one), as a signer asking for ExpiresIn=3600 writes it.
        return {"expires": expires, "not_before": min(expires - 1, NOW) if expires <= NOW
                else max(expires - 3600, expires - 604800)}  # fmt: skip

    def test_rotated_keys_both_verify_and_are_named(self) -> None:
        # The contract's key ids name AWS access keys here: "new" is AKIANEW000000000.
        new, old = self.key_material("new"), self.key_material("old")
        verifier = self.make_verifier([new, old])
        assert verifier.key_ids == (new.id, old.id)
        by_new = self.verify(verifier, self.sign(self.make_verifier([new])))
        by_old = self.verify(verifier, self.sign(self.make_verifier([old])))
        assert (by_new.reason, by_new.key_id) == (Reason.OK, new.id)
        assert (by_old.reason, by_old.key_id) == (Reason.OK, old.id)
        assert self.verify(verifier, self.sign(verifier)).key_id == new.id

    def test_round_trip(self) -> None:
        verifier = self.single("k1")
        verdict = self.verify(verifier, self.sign(verifier))
        assert (verdict.reason, verdict.key_id) == (Reason.OK, "AKIAK10000000000")


@pytest.mark.parametrize("vector", VECTORS["vectors"], ids=lambda v: v["description"])
def test_known_answers_verify_and_are_signed_byte_for_byte(vector: dict[str, Any]) -> None:
    verifier = build_source(
        "s3-sigv4", [KeyMaterial(vector["key_id"], secret=vector["secret"].encode())],
        settings={"region": vector["region"], "service": vector["service"],
                  "public_origin": vector["public_origin"]},
    )  # fmt: skip
    signed_at, lifetime = vector["signed_at"], vector["expires_in"]
    verdict = verify_verdict(verifier, vector["uri"], signed_at + 1)
    assert (verdict.reason, verdict.expires_at) == (Reason.OK, signed_at + lifetime)
    unsigned = vector["public_origin"] + vector["uri"].partition("?")[0]
    signed = sign(verifier, unsigned, expires=signed_at + lifetime, not_before=signed_at)
    assert signed == vector["public_origin"] + vector["uri"]


def test_every_byte_of_a_signed_url_is_covered() -> None:
    verifier = source()
    signed = presign(verifier)
    for position in range(1, len(signed)):
        char = signed[position]
        swapped = {"a": "b", "0": "1", "%": "%", "&": "&", "=": "=", "?": "?", "/": "/"}
        other = swapped.get(char.lower(), "a" if char != "a" else "b")
        if other == char:
            continue
        tampered = signed[:position] + other + signed[position + 1 :]
        assert reason(verifier, tampered) is not Reason.OK, tampered


def test_the_host_is_signed() -> None:
    # The same key and path signed for another origin (or port) is invalid here.
    elsewhere = source(
        key("AKIAEXAMPLE0000001", "s" * 40), public_origin="https://other.example.com"
    )
    on_port = source(key("AKIAEXAMPLE0000001", "s" * 40), public_origin=ORIGIN + ":8443")
    here = source(key("AKIAEXAMPLE0000001", "s" * 40))
    assert reason(here, presign(elsewhere)) is Reason.INVALID
    assert reason(here, presign(on_port)) is Reason.INVALID
    assert reason(on_port, presign(on_port)) is Reason.OK
    # The default port is not part of the signed host, as signers write it.
    assert reason(here, presign(source(key("AKIAEXAMPLE0000001", "s" * 40),
                                       public_origin=ORIGIN + ":443"))) is Reason.OK  # fmt: skip


def test_region_and_service_are_the_sources() -> None:
    material = key()
    here = source(material)
    assert reason(here, presign(source(material, region="us-east-1"))) is Reason.INVALID
    assert reason(here, presign(source(material, service="execute-api"))) is Reason.INVALID


def test_an_access_key_the_source_does_not_hold_is_unknown() -> None:
    assert reason(source(), presign(source(key("AKIAOTHER000000001")))) is Reason.UNKNOWN_KEY


def test_time_edges() -> None:
    verifier = source()
    signed = presign(verifier, signed_at=NOW + 100, lifetime=50)
    assert reason(verifier, signed, NOW + 99) is Reason.NOT_YET_VALID
    assert reason(verifier, signed, NOW + 40, skew=60) is Reason.OK
    assert reason(verifier, signed, NOW + 100) is Reason.OK
    assert reason(verifier, signed, NOW + 149) is Reason.OK
    assert reason(verifier, signed, NOW + 150) is Reason.EXPIRED


def test_the_seven_day_limit() -> None:
    verifier = source()
    week = presign(verifier, lifetime=604800)
    assert reason(verifier, week) is Reason.OK
    # A longer X-Amz-Expires is refused before any key is tried: it is not SigV4.
    assert reason(verifier, replaced(week, "X-Amz-Expires", "604801")) is Reason.MALFORMED
    with pytest.raises(SchemeError, match="604800"):
        presign(verifier, lifetime=604801)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("X-Amz-Algorithm", "AWS4-HMAC-SHA512"),
        ("X-Amz-SignedHeaders", "host%3Bx-amz-date"),
        ("X-Amz-SignedHeaders", "Host"),
        ("X-Amz-Date", "20300101T000000"),
        ("X-Amz-Date", "20300230T000000Z"),  # February 30th
        ("X-Amz-Date", "20301317T000000Z"),
        ("X-Amz-Date", "00000101T000000Z"),
        ("X-Amz-Date", "20300001T000000Z"),
        ("X-Amz-Date", "20300101T240000Z"),
        ("X-Amz-Date", "2030-01-01T00:00:00Z"),
        ("X-Amz-Expires", "0"),
        ("X-Amz-Expires", "03600"),
        ("X-Amz-Expires", "-1"),
        ("X-Amz-Credential", "AKIAEXAMPLE0000001/20300101/eu-west-1/s3/aws4_request"),
        ("X-Amz-Credential", "AKIAEXAMPLE0000001%2f20300101%2feu-west-1%2fs3%2faws4_request"),
        ("X-Amz-Credential", "AKIAEXAMPLE0000001%2F20300101%2Feu-west-1%2Fs3%2Faws5_request"),
        ("X-Amz-Credential", "AKIAEXAMPLE0000001%2F20300101%2Feu-west-1%2Fs3"),
    ],
)
def test_signing_parameters_in_another_form_are_malformed(name: str, value: str) -> None:
    verifier = source()
    assert reason(verifier, replaced(presign(verifier), name, value)) is Reason.MALFORMED


def test_a_credential_for_another_day_than_its_date_is_malformed() -> None:
    verifier = source()
    signed = presign(verifier)
    day = signed.partition("X-Amz-Date=")[2][:8]
    assert reason(verifier, signed.replace(f"%2F{day}%2F", "%2F20991231%2F")) is Reason.MALFORMED


@pytest.mark.parametrize("name", ["X-Amz-Signature", "X-Amz-Date", "X-Amz-Credential"])
def test_a_repeated_signing_parameter_is_non_canonical(name: str) -> None:
    verifier = source()
    signed = presign(verifier)
    value = signed.partition(f"{name}=")[2].partition("&")[0]
    assert reason(verifier, f"{signed}&{name}={value}") is Reason.NON_CANONICAL


@pytest.mark.parametrize("spelling", ["x-amz-signature", "X-AMZ-SIGNATURE", "X-Amz-%53ignature"])
def test_another_spelling_of_a_signing_parameter_is_malformed(spelling: str) -> None:
    verifier = source()
    signed = presign(verifier)
    assert reason(verifier, signed.replace("X-Amz-Signature=", f"{spelling}=")) is Reason.MALFORMED


@pytest.mark.parametrize(
    "query",
    ["w=4%2a0", "w=a+b", "w=%7E", "w", "w=4&&h=1", "w=%FF", "w=caf\u00e9"],
    ids=["lowercase hex", "plus", "encoded unreserved", "no equals", "empty pair",
         "not utf-8", "raw non-ascii"],
)  # fmt: skip
def test_a_query_not_in_aws_encoding_is_malformed(query: str) -> None:
    # Each of these has a second spelling of the same canonical query: refused unread.
    verifier = source()
    signed = presign(verifier, "/books/a.jpg?h=1")
    path, _, rest = signed.partition("?")
    assert reason(verifier, f"{path}?{query}&{rest}") is Reason.MALFORMED


def test_aws_encoded_query_values_are_signed_sorted() -> None:
    verifier = source()
    url = "/books/a.jpg?response-content-disposition=inline%3B%20filename%3Da.jpg&a=%C3%A9&a=1"
    assert reason(verifier, presign(verifier, url)) is Reason.OK


def test_session_credentials_are_refused() -> None:
    verifier = source()
    signed = presign(verifier)
    assert reason(verifier, signed + "&X-Amz-Security-Token=FwoGZXIvYXdzE") is Reason.MALFORMED


def test_partial_signing_parameters() -> None:
    verifier = source()
    signed = presign(verifier)
    path, _, query = signed.partition("?")
    no_signature = "&".join(p for p in query.split("&") if not p.startswith("X-Amz-Signature="))
    no_date = "&".join(p for p in query.split("&") if not p.startswith("X-Amz-Date="))
    assert reason(verifier, f"{path}?{no_signature}") is Reason.MISSING
    assert reason(verifier, f"{path}?{no_date}") is Reason.MALFORMED


def test_the_signing_time_is_the_not_before_else_the_time_of_signing() -> None:
    verifier = source()

    def signed_at(**grant: Any) -> str:
        request = sign_request("/books/a.jpg", Grant(**grant), now=NOW)
        return verifier.sign(request).url.partition("X-Amz-Date=")[2][:16]

    assert signed_at(expires=NOW + 60) == sigv4.format_amz_date(NOW)
    assert signed_at(expires=NOW + 60, not_before=NOW - 30) == sigv4.format_amz_date(NOW - 30)
    with pytest.raises(SchemeError, match="604800"):
        signed_at(expires=NOW + 604801)


def test_signing_needs_the_signing_time_and_refuses_what_sigv4_cannot_carry() -> None:
    verifier = source()
    with pytest.raises(SchemeError, match="not_before"):
        sign(verifier, "/books/a.jpg", expires=NOW + 60)  # no not_before, and no clock
    with pytest.raises(SchemeError, match="expiry"):
        sign(verifier, "/books/a.jpg", not_before=NOW)
    with pytest.raises(SchemeError, match="client_ip"):
        sign(verifier, "/books/a.jpg", expires=NOW + 60, not_before=NOW, client_ip="203.0.113.5")
    with pytest.raises(SchemeError, match="public_origin"):
        presign(verifier, "https://other.example.com/books/a.jpg")
    with pytest.raises(SchemeError, match="X-Amz"):
        presign(verifier, "/books/a.jpg?X-Amz-Date=1")
    with pytest.raises(SchemeError, match="encode"):
        presign(verifier, "/books/a.jpg?w=a+b")


@pytest.mark.parametrize(
    ("settings", "problem"),
    [
        ({"public_origin": ORIGIN}, "region"),
        ({"region": "eu-west-1"}, "public_origin"),
        ({"region": "EU/WEST", "public_origin": ORIGIN}, "region"),
        ({"region": "eu-west-1", "service": "s3/x", "public_origin": ORIGIN}, "service"),
        ({"region": "eu-west-1", "public_origin": ORIGIN + "/bucket"}, "public_origin"),
    ],
)
def test_settings_problems(settings: dict[str, str], problem: str) -> None:
    with pytest.raises(SchemeError, match=problem):
        build_source("s3-sigv4", [key()], settings=settings)


def test_key_problems() -> None:
    with pytest.raises(SchemeError, match="16"):
        source(key(secret="short"))
    with pytest.raises(SchemeError, match="access key id"):
        source(key("AK/IA", "s" * 40))


@pytest.mark.parametrize(
    "raw",
    ["", "AWS4-HMAC-SHA256", "a.b_c~d-e", "20300101T000000Z", "%2F", "%2f", "%7E", "a+b",
     "a b", "a/b", "%", "%FF", "caf%C3%A9", "caf\u00e9", "a%20b", "~"],
)  # fmt: skip
def test_uri_decoded_reads_only_aws_encoding(raw: str) -> None:
    # The rule, as the docs state it: the text whose AWS encoding is exactly ``raw``.
    try:
        text: str | None = unquote(raw, errors="strict")
    except UnicodeDecodeError:
        text = None
    expected = text if text is not None and quote(text, safe="") == raw else None
    assert sigv4.uri_decoded(raw) == expected


def kept_keys(verifier: SourceScheme) -> dict[tuple[str, str], bytes]:
    assert isinstance(verifier, S3SigV4Source)
    return verifier.derived_keys


def test_signing_keys_are_kept_once_a_signature_holds() -> None:
    first, second = key("AKIAEXAMPLE0000001"), key("AKIAEXAMPLE0000002")
    verifier = source(first, second)
    by_second = source(second)
    day = sigv4.format_amz_date(SIGNED_AT)[:8]
    forged = replaced(presign(verifier), "X-Amz-Signature", "0" * 64)
    assert reason(verifier, forged) is Reason.INVALID
    assert kept_keys(verifier) == {}  # a forgery leaves nothing behind
    for _ in range(2):  # derived, then remembered: the same answers
        assert reason(verifier, presign(verifier)) is Reason.OK
        assert reason(verifier, presign(by_second)) is Reason.OK
        assert reason(verifier, forged) is Reason.INVALID
    assert set(kept_keys(verifier)) == {(first.id, day), (second.id, day)}
    # Each key its own: a remembered key never verifies another key's URL.
    assert reason(verifier, presign(by_second).replace(second.id, first.id)) is Reason.INVALID


def test_kept_signing_keys_are_bounded_oldest_dropped() -> None:
    verifier = source()
    days = [SIGNED_AT - 86400 * back for back in range(DERIVED_KEYS_KEPT + 3)]
    urls = [presign(verifier, signed_at=at, lifetime=604800) for at in days]
    for url, at in zip(urls, days, strict=True):
        assert reason(verifier, url, at + 1) is Reason.OK
    kept = [day for _, day in kept_keys(verifier)]
    assert len(kept) == DERIVED_KEYS_KEPT
    assert kept == [sigv4.format_amz_date(at)[:8] for at in days[3:]]
    assert reason(verifier, urls[0], days[0] + 1) is Reason.OK  # dropped: derived again
