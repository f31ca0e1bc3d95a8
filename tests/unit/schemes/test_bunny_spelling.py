"""Scheme ``bunny``: the query's one layout and spelling, ``token_path`` within the source,
conditions this verifier cannot keep, the settings, and what the signer refuses."""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

import pytest

from sidecar.core.verdict import Reason
from sidecar.errors import SchemeError
from sidecar.schemes.base import KeyMaterial, SourceScheme, VerifyRequest
from tests.support.scheme_contract import NOW, build_source, parse, sign
from tests.unit.schemes.test_bunny import b64url, hs256_token

SECRET = b"bunny-zone-security-key"
EXPIRES = NOW + 600


def source(prefix: str = "/videos/", **settings: Any) -> SourceScheme:
    return build_source("bunny", [KeyMaterial("k1", secret=SECRET)], prefix=prefix,
                        settings=settings)  # fmt: skip


def reason(uri: str, *, ip: str | None = "203.0.113.5", verifier: SourceScheme | None = None,
           country: str | None = None) -> Reason:  # fmt: skip
    verifier = verifier or source()
    return verifier.verify(VerifyRequest(parse(uri), NOW, 0, ip, None, None, country)).reason


def url(path: str, params: str = "", *, signed_path: str | None = None,
        data: str | None = None) -> str:  # fmt: skip
    """A URL whose token signs ``params`` (raw in the URL; ``data`` decoded if given)."""
    pairs = [pair for pair in params.split("&") if pair]
    signing = data if data is not None else "&".join(pairs)
    token = hs256_token(SECRET, signed_path or path, EXPIRES, signing)
    middle = "".join(f"&{pair}" for pair in pairs)
    return f"{path}?token={token}{middle}&expires={EXPIRES}"


def test_a_well_formed_url_is_ok() -> None:
    assert reason(url("/videos/a.mp4", "h=2&w=1")) is Reason.OK


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        ("/videos/a.mp4?expires=1", Reason.MISSING),
        ("/videos/a.mp4", Reason.MISSING),
        ("/videos/a.mp4?w=1&token=x&expires=1", Reason.MALFORMED),  # token not first
        ("/videos/a.mp4?token=x&expires=1&w=1", Reason.MALFORMED),  # expires not last
        ("/videos/a.mp4?token=x", Reason.MALFORMED),
        ("/videos/a.mp4?token=x&token=y&expires=1", Reason.NON_CANONICAL),
        ("/videos/a.mp4?token=x&expires=1&expires=1", Reason.NON_CANONICAL),
        (url("/videos/a.mp4", "w=1", data="w=").replace("w=1", "w"), Reason.MALFORMED),
        (url("/videos/a.mp4", "w=", data="w="), Reason.OK),
    ],
)
def test_layout(uri: str, expected: Reason) -> None:
    assert reason(uri) is expected


@pytest.mark.parametrize(
    ("params", "data", "expected"),
    [
        ("w=1&h=2", "w=1&h=2", Reason.MALFORMED),  # not sorted
        ("h=1&h=2", "h=1&h=2", Reason.NON_CANONICAL),  # repeated
        ("token_countries=CA,US", "token_countries=CA,US", Reason.MALFORMED),  # raw ","
        ("token_countries=CA%2cUS", "token_countries=CA,US", Reason.MALFORMED),  # lowercase hex
        ("token_countries=CA%2C%20US", "token_countries=CA, US", Reason.MALFORMED),  # a space
        ("token_countries=ca", "token_countries=ca", Reason.MALFORMED),
        ("token_countries=CA%2CCA", "token_countries=CA,CA", Reason.MALFORMED),
        ("token_countries=", "token_countries=", Reason.MALFORMED),
        ("token_referer=example.com", "token_referer=example.com", Reason.MALFORMED),
        ("q=a+b", "q=a b", Reason.MALFORMED),  # "+" for a space: "%20" is its spelling
        ("q=%FF", "q=\ufffd", Reason.MALFORMED),  # not UTF-8
        ("q%3D=1", "q==1", Reason.MALFORMED),  # an encoded name
        ("q=a%20b", "q=a b", Reason.OK),
        ("q=%7E", "q=~", Reason.MALFORMED),  # "~" is unreserved: written raw
        ("q=~", "q=~", Reason.OK),
    ],
)
def test_parameter_spelling(params: str, data: str, expected: Reason) -> None:
    assert reason(url("/videos/a.mp4", params, data=data)) is expected


@pytest.mark.parametrize(
    ("path", "token_path", "expected"),
    [
        ("/videos/hls/a.ts", "/videos/hls", Reason.OK),
        ("/videos/hls/a.ts", "/videos/hls/", Reason.OK),
        ("/videos/hls/x/a.ts", "/videos/", Reason.OK),
        ("/videos/hls", "/videos/hls", Reason.OK),
        ("/videos/hlsx/a.ts", "/videos/hls", Reason.INVALID),  # not on a segment boundary
        ("/videos/hls/a.ts", "/videos/other/", Reason.INVALID),  # does not cover the path
        ("/videos/a.ts", "/", Reason.INVALID),  # wider than the source
        ("/videos/a.ts", "/vid", Reason.INVALID),
        ("/videos/a.ts", "videos/", Reason.INVALID),
    ],
)
def test_token_path_covers_the_path_within_the_source(
    path: str, token_path: str, expected: Reason
) -> None:
    encoded = token_path.replace("/", "%2F")
    uri = url(path, f"token_path={encoded}", signed_path=token_path,
              data=f"token_path={token_path}")  # fmt: skip
    assert reason(uri) is expected


def test_classic_bound_token_reads_the_address_as_text() -> None:
    message = SECRET + f"/videos/a.mp4{EXPIRES}2001:db8::1w=1".encode()
    token = b64url(hashlib.sha256(message).digest())
    uri = f"/videos/a.mp4?token={token}&w=1&expires={EXPIRES}"
    assert reason(uri, ip="2001:db8::1") is Reason.OK
    assert reason(uri, ip="2001:0db8:0::1") is Reason.OK  # the same address, spelled otherwise
    assert reason(uri, ip="2001:db8::2") is Reason.INVALID
    # Bunny's oldest Python signer put the address after the parameters: not read.
    late = SECRET + f"/videos/a.mp4{EXPIRES}w=12001:db8::1".encode()
    late_uri = uri.replace(token, b64url(hashlib.sha256(late).digest()))
    assert reason(late_uri, ip="2001:db8::1") is Reason.INVALID


def test_hs256_token_bound_to_an_address_needs_the_flag() -> None:
    address = bytes([203, 0, 113, 5])
    message = f"/videos/a.mp4{EXPIRES}".encode() + address
    digest = b64url(hmac.new(SECRET, message, hashlib.sha256).digest())
    flagged = f"/videos/a.mp4?token=HS256-1-{digest}&expires={EXPIRES}"
    assert reason(flagged) is Reason.OK
    assert reason(flagged.replace("HS256-1-", "HS256-")) is Reason.INVALID
    assert reason(flagged, ip=None) is Reason.IP_MISMATCH


def test_basic_signs_no_parameter() -> None:
    basic = source(variant="basic")
    digest = hashlib.md5(SECRET + f"/videos/a.mp4{EXPIRES}".encode()).digest()
    uri = f"/videos/a.mp4?token={b64url(digest)}&expires={EXPIRES}"
    assert reason(uri, verifier=basic) is Reason.OK
    assert reason(uri.replace("&expires", "&w=1&expires"), verifier=basic) is Reason.INVALID
    assert reason(uri.replace("token=", "token=HS256-"), verifier=basic) is Reason.MALFORMED


def test_variant_setting() -> None:
    with pytest.raises(SchemeError, match="variant: must be 'advanced' or 'basic'"):
        source(variant="sha1")


@pytest.mark.parametrize(
    ("unsigned", "grant", "message"),
    [
        ("/videos/a.mp4", {}, "need an expiry"),
        ("/videos/a.mp4?token=1", {"expires": EXPIRES}, "already carries 'token'"),
        ("/videos/a.mp4?expires=1", {"expires": EXPIRES}, "already carries 'expires'"),
        ("/videos/a.mp4?token_referer=x", {"expires": EXPIRES}, "token_referer"),
        ("/videos/a.mp4?w=1&w=2", {"expires": EXPIRES}, "repeated"),
        ("/videos/a.mp4?a%20b=1", {"expires": EXPIRES}, "letters, digits"),
        ("/videos/a.mp4", {"expires": EXPIRES, "not_before": NOW}, "not_before"),
        ("/videos/a.mp4", {"expires": EXPIRES, "prefix": "/"}, "prefix"),
        ("/videos/a.mp4", {"expires": EXPIRES, "prefix": "/videos/b/"}, "prefix"),
        ("/videos/a.mp4", {"expires": EXPIRES, "client_ip": "10.0.0.0/8"}, "IP address"),
    ],
)
def test_signer_refuses(unsigned: str, grant: dict[str, Any], message: str) -> None:
    with pytest.raises(SchemeError, match=message):
        sign(source(), unsigned, **grant)


def test_basic_signer_refuses_parameters_and_prefixes() -> None:
    with pytest.raises(SchemeError, match="basic"):
        sign(source(variant="basic"), "/videos/a.mp4?w=1", expires=EXPIRES)
    with pytest.raises(SchemeError, match="basic"):
        sign(source(variant="basic"), "/videos/a.mp4", expires=EXPIRES, prefix="/videos/")


def test_signed_prefix_and_countries_verify() -> None:
    signed = sign(source(), "/videos/hls/a.ts?token_countries=CA%2CUS", expires=EXPIRES,
                  prefix="/videos/hls/", client_ip="2001:db8:1:2::9")  # fmt: skip
    assert "&token_countries=CA%2CUS&token_path=%2Fvideos%2Fhls%2F&expires=" in signed
    assert reason(signed, ip="2001:db8:1:2::77", country="CA") is Reason.OK
    assert reason(signed, ip="2001:db8:1:2::77", country="FR") is Reason.COUNTRY
    other = signed.replace("/videos/hls/a.ts?", "/videos/hls/b.ts?")
    assert reason(other, ip="2001:db8:1:2::77", country="US") is Reason.OK
