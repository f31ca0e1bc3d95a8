"""Scheme ``cloudfront`` with ``accept_cookies``: CloudFront signed cookies (docs/cookies.md).

The cookies are built as AWS's documentation builds them, with botocore's real
``CloudFrontSigner.build_policy`` and the signer's CloudFront base64:
https://docs.aws.amazon.com/AmazonCloudFront/latest/DeveloperGuide/private-content-setting-signed-cookie-custom-policy.html
"""

from __future__ import annotations

import base64
import email.utils
import json
from pathlib import Path
from typing import Any, ClassVar

import pytest

from sidecar import config
from sidecar.core.verdict import Reason, Verdict
from sidecar.errors import SchemeError
from sidecar.policy.decide import Decider, RequestFacts
from sidecar.policy.signing import sign_request
from sidecar.schemes.base import Grant, KeyMaterial, SourceScheme
from sidecar.schemes.cloudfront import b64decode, b64encode
from tests.support.cloudfront import (
    CLIENT_IP,
    KEY_IDS,
    ORIGIN,
    SIGNERS,
    botocore_signer,
    material,
    pair,
    when,
)
from tests.support.configs import cloudfront_source, sidecar_config
from tests.support.scheme_contract import (
    NOW,
    Carrier,
    SchemeContract,
    build_source,
    verify,
)

SETTINGS = {"public_origin": ORIGIN, "accept_cookies": True}
PREFIX_RESOURCE = f"{ORIGIN}/acme/*"
UNDER_PREFIX = [
    "/acme/a.jpg",
    "/acme/a.jpg?w=400&h=600",
    "/acme/database-internals.jpg",
    "/acme/caf%C3%A9%20menu.png",
    "/acme/deep/er/x.png?text=a%26b",
]


class TestCloudFrontCookies(SchemeContract):
    scheme_name: ClassVar[str] = "cloudfront"
    settings: ClassVar[dict[str, Any]] = SETTINGS
    path_prefix: ClassVar[str] = "/acme/"
    carrier: ClassVar[Carrier] = Carrier.COOKIE
    unsigned_url: ClassVar[str] = f"{ORIGIN}/acme/database-internals.jpg?w=400&h=600&fit=crop"
    signature_param: ClassVar[str] = "CloudFront-Signature"
    bad_signature_values: ClassVar[list[str]] = ["abc", "ab+c", "ab/c", "ab==", "a_bc", "____"]
    _serial: ClassVar[list[int]] = [0]

    def key_material(self, key_id: str) -> KeyMaterial:
        self._serial[0] += 1
        return material(key_id, "rsa", f"cookie-{key_id}-{self._serial[0]}")

    def test_expired_and_tampered_is_invalid_not_expired(self) -> None:
        # The contract tampers the query, which a cookie grant covers; tamper the grant.
        verifier = self.single()
        signed = self.sign(verifier, expires=NOW - 100)
        value = self.signature(signed)
        altered = self.with_signature(signed, ("a" if value[0] != "a" else "b") + value[1:])
        assert self.verify(verifier, altered).reason is Reason.INVALID
        assert self.verify(verifier, signed).reason is Reason.EXPIRED


# --- cookies as AWS documents them, from botocore ------------------------------------------


def botocore_cookies(
    name: str = "rsa-sha1",
    resource: str = PREFIX_RESOURCE,
    *,
    expires: int = NOW + 600,
    not_before: int | None = None,
    ip: str | None = None,
    canned: bool = False,
) -> dict[str, str]:
    """The cookies AWS's documentation sets, signed by botocore's CloudFrontSigner."""
    signer, sha256 = botocore_signer(name)
    document = signer.build_policy(
        resource,
        when(expires),
        date_greater_than=when(not_before) if not_before is not None else None,
        ip_address=ip,
    ).encode()
    signature = signer._url_b64encode(signer.rsa_signer(document)).decode()
    cookies = {"CloudFront-Signature": signature, "CloudFront-Key-Pair-Id": signer.key_id}
    if canned:
        cookies["CloudFront-Expires"] = str(expires)
    else:
        cookies["CloudFront-Policy"] = signer._url_b64encode(document).decode()
    if sha256:
        cookies["CloudFront-Hash-Algorithm"] = "SHA256"
    return cookies


def header(cookies: dict[str, str], *extra: str) -> str:
    return "; ".join([*extra, *(f"{name}={value}" for name, value in cookies.items())])


def acme(**settings: Any) -> SourceScheme:
    """Source "acme" under /acme/ with botocore's two key pairs, cookies accepted."""
    keys = [
        KeyMaterial(KEY_IDS["rsa"], public_key_pem=pair("rsa", "botocore")[1],
                    private_key_pem=pair("rsa", "botocore")[0]),
        KeyMaterial(KEY_IDS["ecdsa"], public_key_pem=pair("ecdsa", "botocore")[1]),
    ]  # fmt: skip
    return build_source("cloudfront", keys, prefix="/acme/", settings={**SETTINGS, **settings})


def check(uri: str, cookies: str | None, now: int = NOW, ip: str = CLIENT_IP) -> Verdict:
    return verify(acme(), uri, now, ip=ip, cookies=cookies)


@pytest.mark.parametrize("uri", UNDER_PREFIX)
@pytest.mark.parametrize("name", sorted(SIGNERS))
def test_botocore_custom_cookies_open_every_file_under_the_prefix(name: str, uri: str) -> None:
    verdict = check(uri, header(botocore_cookies(name)))
    assert verdict.reason is Reason.OK
    assert verdict.key_id == KEY_IDS[SIGNERS[name][0]]
    assert verdict.expires_at == NOW + 600
    assert verdict.shareable is False  # the auth cache key holds no cookie


@pytest.mark.parametrize("name", sorted(SIGNERS))
def test_botocore_canned_cookies_open_their_own_url_only(name: str) -> None:
    # AWS: a canned policy's Resource is the URL requested, query included; no wildcards.
    cookies = header(botocore_cookies(name, f"{ORIGIN}/acme/a.jpg?w=400", canned=True))
    verdict = check("/acme/a.jpg?w=400", cookies)
    assert (verdict.reason, verdict.shareable) == (Reason.OK, False)
    for other in ("/acme/a.jpg", "/acme/a.jpg?w=401", "/acme/b.jpg?w=400"):
        assert check(other, cookies).reason is Reason.INVALID, other


def test_other_cookies_around_the_grant_do_not_matter() -> None:
    cookies = header(botocore_cookies(), "session=abc", "theme=dark; _ga=GA1.2.3")
    assert check("/acme/a.jpg", cookies).reason is Reason.OK


def test_a_prefix_grant_never_opens_another_prefix() -> None:
    cookies = header(botocore_cookies())
    for uri in ("/acme-other/x.png", "/secret/x.png", "/acmex.png", "/acme", "/"):
        assert check(uri, cookies).reason is Reason.INVALID, uri


def test_a_non_segment_resource_is_refused_and_never_signed_here() -> None:
    # CloudFront's "*" crosses "-" and "/": ``…/acme*`` would also open ``/acme-other/``,
    # another source's files. The source at /acme/ holds a grant to its own prefix.
    cookies = header(botocore_cookies(resource=f"{ORIGIN}/acme*"))
    assert check("/acme-other/x.png", cookies).reason is Reason.INVALID
    assert check("/acme/x.png", cookies).reason is Reason.INVALID
    with pytest.raises(SchemeError, match="segment boundary"):
        acme().sign(
            sign_request(f"{ORIGIN}/acme/x.png", Grant(NOW + 60, prefix="/acme", cookies=True))
        )


def test_cookies_are_ignored_unless_the_source_accepts_them() -> None:
    verifier = acme(accept_cookies=False)
    verdict = verify(verifier, "/acme/a.jpg", cookies=header(botocore_cookies()))
    assert verdict.reason is Reason.MISSING


# --- the URL decides whenever it carries a signing parameter -------------------------------


def _signed_url(expires: int = NOW + 600) -> str:
    signer, _ = botocore_signer("rsa-sha1")
    url: str = signer.generate_presigned_url(f"{ORIGIN}/acme/a.jpg", date_less_than=when(expires))
    return url.removeprefix(ORIGIN)


def test_a_broken_url_signature_is_never_rescued_by_a_cookie() -> None:
    cookies = header(botocore_cookies())
    url = _signed_url()
    broken = url.replace("Signature=", "Signature=AAAA", 1)
    assert check(broken, cookies).reason is Reason.INVALID
    assert check(_signed_url(NOW - 10), cookies).reason is Reason.EXPIRED
    # One signing parameter alone is enough for the URL to decide.
    assert check("/acme/a.jpg?Key-Pair-Id=KRSA2026", cookies).reason is Reason.MISSING
    assert check("/acme/a.jpg?Expires=1", cookies).reason is Reason.MISSING


def test_a_valid_url_signature_ignores_a_stale_cookie() -> None:
    stale = header(botocore_cookies(expires=NOW - 10))
    verdict = check(_signed_url(), stale)
    assert (verdict.reason, verdict.shareable) == (Reason.OK, True)


# --- every bad cookie input is a reason ----------------------------------------------------


@pytest.mark.parametrize(
    "name", ["CloudFront-Policy", "CloudFront-Signature", "CloudFront-Key-Pair-Id"]
)
def test_each_of_the_three_cookies_missing_is_missing(name: str) -> None:
    cookies = botocore_cookies()
    del cookies[name]
    assert check("/acme/a.jpg", header(cookies)).reason is Reason.MISSING
    assert check("/acme/a.jpg", None).reason is Reason.MISSING
    assert check("/acme/a.jpg", "").reason is Reason.MISSING


@pytest.mark.parametrize(
    "name", ["CloudFront-Policy", "CloudFront-Signature", "CloudFront-Key-Pair-Id"]
)
def test_a_duplicated_cookie_is_non_canonical(name: str) -> None:
    cookies = botocore_cookies()
    twice = header(cookies, f"{name}={cookies[name]}")
    assert check("/acme/a.jpg", twice).reason is Reason.NON_CANONICAL


def test_a_cookie_header_over_64_kb_is_non_canonical() -> None:
    cookies = header(botocore_cookies(), "pad=" + "x" * 65536)
    assert check("/acme/a.jpg", cookies).reason is Reason.NON_CANONICAL


def test_a_cookie_header_of_20_kb_is_read() -> None:
    # Many cookies of a browser's add up to more than one header line nginx accepts.
    padding = "; ".join(f"pad{index}=" + "x" * 1000 for index in range(20))
    assert check("/acme/a.jpg", header(botocore_cookies(), padding)).reason is Reason.OK


def test_other_spellings_of_the_names_are_not_the_grant() -> None:
    cookies = botocore_cookies()
    lowered = {name.lower(): value for name, value in cookies.items()}
    assert check("/acme/a.jpg", header(lowered)).reason is Reason.MISSING


def _with(**changes: str) -> str:
    cookies = botocore_cookies()
    for name, value in changes.items():
        cookies["CloudFront-" + name.replace("_", "-")] = value
    return header(cookies)


# A policy for every URL, not the one signed: the signature no longer holds.
WIDER_POLICY = b'{"Statement":[{"Condition":{"DateLessThan":{"AWS:EpochTime":2000000000}}}]}'
BAD_COOKIES: dict[str, tuple[str, Reason]] = {
    "quoted signature": (_with(Signature='"abcd"'), Reason.MALFORMED),
    "policy not base64": (_with(Policy="ab+c"), Reason.MALFORMED),
    "policy and expires": (_with(Expires=str(NOW + 600)), Reason.MALFORMED),
    "signature not base64": (_with(Signature="ab/c"), Reason.MALFORMED),
    "hash algorithm unknown": (_with(Hash_Algorithm="MD5"), Reason.MALFORMED),
    "hash algorithm other than signed": (_with(Hash_Algorithm="SHA256"), Reason.INVALID),
    "unknown key": (_with(Key_Pair_Id="KNOBODY"), Reason.UNKNOWN_KEY),
    "other key's id": (_with(Key_Pair_Id=KEY_IDS["ecdsa"]), Reason.INVALID),
    "policy swapped": (_with(Policy=b64encode(WIDER_POLICY)), Reason.INVALID),
}


@pytest.mark.parametrize("case", sorted(BAD_COOKIES))
def test_bad_cookies_are_denied_with_their_reason(case: str) -> None:
    cookies, reason = BAD_COOKIES[case]
    assert check("/acme/a.jpg", cookies).reason is reason


def test_policy_conditions_hold_for_cookies() -> None:
    timed = header(botocore_cookies(not_before=NOW + 60, ip="203.0.113.0/24"))
    assert check("/acme/a.jpg", timed).reason is Reason.NOT_YET_VALID
    assert check("/acme/a.jpg", timed, now=NOW + 61).reason is Reason.OK
    assert check("/acme/a.jpg", timed, now=NOW + 61, ip="198.51.100.1").reason is (
        Reason.IP_MISMATCH
    )
    expired = header(botocore_cookies(expires=NOW))
    assert check("/acme/a.jpg", expired).reason is Reason.EXPIRED


# --- signing -------------------------------------------------------------------------------


def _sign(url: str = f"{ORIGIN}/acme/x.png?w=1", **grant: Any) -> tuple[str, tuple[str, ...]]:
    signed = acme().sign(sign_request(url, Grant(NOW + 600, cookies=True, **grant)))
    return signed.url, signed.cookies


def test_signed_cookies_are_set_cookie_values_for_the_prefix() -> None:
    url, cookies = _sign()
    assert url == f"{ORIGIN}/acme/x.png?w=1"  # the URL itself stays unsigned
    ends = email.utils.formatdate(NOW + 600, usegmt=True)
    names = []
    for cookie in cookies:
        pair_text, *attributes = cookie.split("; ")
        names.append(pair_text.partition("=")[0])
        assert attributes == ["Path=/acme/", f"Expires={ends}", "Secure", "HttpOnly",
                              "SameSite=Lax"]  # fmt: skip
    assert names == ["CloudFront-Policy", "CloudFront-Signature", "CloudFront-Key-Pair-Id"]
    values = {cookie.partition("=")[0]: cookie.partition("=")[2].partition(";")[0]
              for cookie in cookies}  # fmt: skip
    assert values["CloudFront-Key-Pair-Id"] == KEY_IDS["rsa"]
    document = b64decode(values["CloudFront-Policy"])
    assert document is not None
    statement = json.loads(document)["Statement"][0]
    assert statement["Resource"] == PREFIX_RESOURCE
    # botocore's own policy bytes and base64, for the same grant.
    signer, _ = botocore_signer("rsa-sha1")
    expected = signer.build_policy(PREFIX_RESOURCE, when(NOW + 600)).encode()
    assert document == expected
    assert values["CloudFront-Policy"] == signer._url_b64encode(expected).decode()
    assert base64.b64decode(values["CloudFront-Signature"].translate(str.maketrans("-_~", "+=/")))


def test_signed_cookies_verify_across_the_prefix_only() -> None:
    _, cookies = _sign(f"{ORIGIN}/acme/deep/x.png", prefix="/acme/deep/")
    presented = "; ".join(cookie.partition(";")[0] for cookie in cookies)
    assert check("/acme/deep/x.png?any=thing", presented).reason is Reason.OK
    assert check("/acme/x.png", presented).reason is Reason.INVALID
    _, timed = _sign(not_before=NOW + 60, client_ip="203.0.113.0/24")
    presented = "; ".join(cookie.partition(";")[0] for cookie in timed)
    assert check("/acme/x.png", presented, now=NOW + 61).reason is Reason.OK
    assert check("/acme/x.png", presented).reason is Reason.NOT_YET_VALID


REFUSED: dict[str, tuple[str, dict[str, Any], str]] = {
    "not on a segment boundary": (f"{ORIGIN}/acme/x.png", {"prefix": "/acme/x"}, "segment"),
    "another source's prefix": (f"{ORIGIN}/other/x.png", {"prefix": "/other/"}, "path_prefix"),
    "wider than the source": (f"{ORIGIN}/acme/x.png", {"prefix": "/"}, "path_prefix"),
    "a wildcard": (f"{ORIGIN}/acme/x.png", {"prefix": "/acme/*/"}, "wildcards"),
    "URL outside the prefix": (f"{ORIGIN}/acme/x.png", {"prefix": "/acme/d/"}, "not under"),
    "a free resource": (f"{ORIGIN}/acme/x.png", {"resource": f"{ORIGIN}/*"}, "resource"),
}


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_cookie_grants_that_could_widen_are_refused(case: str) -> None:
    url, grant, message = REFUSED[case]
    with pytest.raises(SchemeError, match=message):
        _sign(url, **grant)


def test_a_prefix_without_cookies_is_refused() -> None:
    with pytest.raises(SchemeError, match="prefix"):
        acme().sign(sign_request(f"{ORIGIN}/acme/x.png", Grant(NOW + 60, prefix="/acme/")))


# --- through the loaded config: the decision, and its cache lifetime -----------------------


def test_config_accept_cookies_and_the_decision_is_never_cached(tmp_path: Path) -> None:
    (tmp_path / "rsa.pub.pem").write_bytes(pair("rsa", "botocore")[1])
    toml = sidecar_config(
        cloudfront_source("acme", "/acme/", {KEY_IDS["rsa"]: "rsa.pub.pem"},
                          public_origin=ORIGIN, accept_cookies=True),
        cloudfront_source("other", "/other/", {"KOTHER": "rsa.pub.pem"}, public_origin=ORIGIN),
        server={"clock_skew": 0, "cache_ttl": 60},
    )  # fmt: skip
    (tmp_path / "sidecar.toml").write_text(toml)
    decider = Decider(config.load(tmp_path / "sidecar.toml"))
    cookies = header(botocore_cookies())

    def decide(uri: str, cookie_header: str | None) -> tuple[int, Reason, int]:
        facts = RequestFacts(uri, "GET", "cdn.example.com", CLIENT_IP, cookie_header)
        decision = decider.decide(facts, NOW)
        return decision.status, decision.reason, decision.cache_ttl

    assert decide("/acme/a.jpg", cookies) == (200, Reason.OK, 0)
    assert decide("/acme/a.jpg", None) == (403, Reason.MISSING, 0)
    assert decide("/other/a.jpg", cookies)[:2] == (403, Reason.MISSING)
    url_verdict = decide(_signed_url(), None)
    assert url_verdict[:2] == (200, Reason.OK) and url_verdict[2] > 0


def test_accept_cookies_must_be_a_boolean(tmp_path: Path) -> None:
    (tmp_path / "rsa.pub.pem").write_bytes(pair("rsa", "botocore")[1])
    toml = sidecar_config(
        cloudfront_source("acme", "/acme/", {KEY_IDS["rsa"]: "rsa.pub.pem"},
                          public_origin=ORIGIN, accept_cookies="yes"),
    )  # fmt: skip
    (tmp_path / "sidecar.toml").write_text(toml)
    with pytest.raises(config.ConfigError, match="accept_cookies"):
        config.load(tmp_path / "sidecar.toml")
