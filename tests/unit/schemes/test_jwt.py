"""Scheme ``jwt``: the shared contract for each family of algorithm, tokens of PyJWT and
joserfc for every algorithm, scope, cookies and the address claim."""

from __future__ import annotations

import dataclasses
import itertools
from typing import Any

import jwt as pyjwt
import pytest

from sidecar import schemes
from sidecar.core.verdict import Reason
from sidecar.errors import SchemeError
from sidecar.policy.signing import sign_request
from sidecar.schemes.base import Grant, KeyMaterial, SourceScheme
from tests.support.jwt_keys import ALGORITHMS, joserfc_token, key_for, pyjwt_token
from tests.support.scheme_contract import (
    CLIENT_IP,
    NOW,
    Presented,
    SchemeContract,
    build_source,
    sign,
    verify,
)

_fresh = itertools.count()
# PyJWT checks times against the wall clock; these tests' instant is NOW.
NO_TIMES: Any = {"verify_exp": False, "verify_nbf": False}
EXP = NOW + 600


class _JwtContract(SchemeContract):
    scheme_name = "jwt"
    signature_param = "token"
    algorithm = "HS256"
    bad_signature_values = (
        "A" * 42 + "=",  # padded
        "A" * 41,  # a length base64 never has
        "A" * 42 + "B",  # non-zero unused bits
        "A" * 40 + "+/A",  # the standard alphabet
        "é" * 43,
    )

    @property
    def query_tampered_reason(self) -> Reason:
        return Reason.OK  # a token opens a path: the query is not covered

    def key_material(self, key_id: str) -> KeyMaterial:
        fresh = key_for(self.algorithm, f"{key_id}-{next(_fresh)}")  # a new key each call
        return dataclasses.replace(fresh.material(), id=key_id)

    # The signature is the token's third part: the contract's changes go there.
    def signature(self, presented: Presented) -> str:
        return super().signature(presented).rpartition(".")[2]

    def with_signature(self, presented: Presented, value: str) -> Presented:
        token = super().signature(presented)
        return super().with_signature(presented, token.rpartition(".")[0] + "." + value)

    def test_expired_and_tampered_is_invalid_not_expired(self) -> None:
        verifier = self.single()
        signed = self.sign(verifier, expires=NOW - 100)
        value = self.signature(signed)
        forged = self.with_signature(signed, ("a" if value[0] != "a" else "b") + value[1:])
        assert self.verify(verifier, forged).reason is Reason.INVALID


class TestJwtHs256(_JwtContract):
    algorithm = "HS256"


class TestJwtEs256(_JwtContract):
    algorithm = "ES256"


class TestJwtRs256(_JwtContract):
    algorithm = "RS256"


class TestJwtPs384(_JwtContract):
    algorithm = "PS384"


class TestJwtEdDsa(_JwtContract):
    algorithm = "EdDSA"


# --- tokens of the third-party signers, every algorithm -------------------------------------


def source_for(*algorithms: str, prefix: str = "/v/", **settings: Any) -> SourceScheme:
    keys = [key_for(name).material() for name in algorithms]
    return build_source("jwt", keys, prefix=prefix, settings=settings)


@pytest.mark.parametrize("algorithm", ALGORITHMS)
@pytest.mark.parametrize("signer", [pyjwt_token, joserfc_token], ids=["pyjwt", "joserfc"])
def test_third_party_tokens_verify(algorithm: str, signer: Any) -> None:
    key = key_for(algorithm)
    source = source_for(*ALGORITHMS)
    token = signer(key, {"sub": "/v/abc", "exp": EXP})
    for path in ("/v/abc", "/v/abc/master.m3u8", "/v/abc/1/seg.ts"):
        verdict = verify(source, f"{path}?token={token}")
        assert (verdict.reason, verdict.key_id, verdict.expires_at) == (Reason.OK, key.kid, EXP)
        assert verdict.shareable
    assert verify(source, f"/v/abcd/x.ts?token={token}").reason is Reason.INVALID
    assert verify(source, f"/v/abc/x.ts?token={token}", EXP).reason is Reason.EXPIRED


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_our_tokens_verify_with_pyjwt(algorithm: str) -> None:
    key = key_for(algorithm)
    signed = sign(source_for(algorithm), "/v/abc/x.ts?w=1", expires=EXP)
    token = signed.rpartition("token=")[2]
    verifying = key.secret or key.public_pem or b""
    claims = pyjwt.decode(token, verifying, algorithms=[algorithm], options=NO_TIMES)
    assert claims == {"sub": "/v/abc/x.ts", "exp": EXP}
    assert pyjwt.get_unverified_header(token) == {"alg": algorithm, "kid": key.kid, "typ": "JWT"}


# --- scope ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("scope", "claim", "path", "reason"),
    [
        ("exact", "/v/a.jpg", "/v/a.jpg", Reason.OK),
        ("exact", "/v/a.jpg", "/v/a.jpg/x", Reason.INVALID),
        ("prefix", "/v/abc", "/v/abc", Reason.OK),
        ("prefix", "/v/abc/", "/v/abc/x/y.ts", Reason.OK),
        ("prefix", "/v/abc", "/v/abcd", Reason.INVALID),
        ("prefix", "/v/", "/v/anything.jpg", Reason.OK),
        ("prefix", "/w/abc", "/v/abc", Reason.INVALID),  # outside the source
        ("prefix", "/", "/v/abc", Reason.INVALID),  # wider than the source
        ("prefix", "/v/caf\u00e9", "/v/caf%C3%A9/1.jpg", Reason.OK),  # decoded paths
        ("prefix", "v/abc", "/v/abc", Reason.INVALID),
        ("prefix", "/v/*", "/v/abc", Reason.INVALID),  # a star only in glob
        ("glob", "/v/abc/*.ts", "/v/abc/seg-1.ts", Reason.OK),
        ("glob", "/v/abc/*.ts", "/v/abc/1/seg.ts", Reason.INVALID),  # never across '/'
        ("glob", "/v/abc/*.ts", "/v/abc/seg.m3u8", Reason.INVALID),
        ("glob", "/v/*/master.m3u8", "/v/x/master.m3u8", Reason.OK),
        ("glob", "/*/abc", "/v/abc", Reason.INVALID),  # its fixed part outside the source
        ("glob", "/v/" + "*" * 17, "/v/a", Reason.INVALID),
    ],
)
def test_scope(scope: str, claim: str, path: str, reason: Reason) -> None:
    key = key_for("HS256")
    token = pyjwt_token(key, {"sub": claim, "exp": EXP})
    verdict = verify(source_for("HS256", scope=scope), f"{path}?token={token}")
    assert verdict.reason is reason


def test_glob_matching_stays_linear() -> None:
    # A pattern that makes a backtracking matcher explode: answered at once.
    key = key_for("HS256")
    token = pyjwt_token(key, {"sub": "/v/" + "*a" * 16 + "b", "exp": EXP})
    path = "/v/" + "a" * 4000
    verdict = verify(source_for("HS256", scope="glob"), f"{path}?token={token}")
    assert verdict.reason is Reason.INVALID


def test_scope_claim_issuer_and_audience() -> None:
    key = key_for("ES256")
    source = source_for("ES256", scope_claim="res", issuer="https://auth.example/",
                        audience="images")  # fmt: skip
    good = {"res": "/v/a", "exp": EXP, "iss": "https://auth.example/", "aud": ["x", "images"]}
    assert verify(source, f"/v/a?token={pyjwt_token(key, good)}").reason is Reason.OK
    for changed in ({"iss": "https://other/"}, {"aud": "video"}, {"aud": None}, {"res": None}):
        claims = {name: value for name, value in {**good, **changed}.items() if value is not None}
        token = pyjwt_token(key, claims)
        assert verify(source, f"/v/a?token={token}").reason is Reason.INVALID, changed
    # An audience the source does not ask for: the token was meant for someone else.
    token = pyjwt_token(key, {"sub": "/v/a", "exp": EXP, "aud": "images"})
    assert verify(source_for("ES256"), f"/v/a?token={token}").reason is Reason.INVALID


# --- times, address, cookies ---------------------------------------------------------------


def test_not_before_with_skew() -> None:
    key = key_for("HS256")
    token = pyjwt_token(key, {"sub": "/v/a", "exp": EXP, "nbf": NOW + 10})
    source = source_for("HS256")
    assert verify(source, f"/v/a?token={token}").reason is Reason.NOT_YET_VALID
    assert verify(source, f"/v/a?token={token}", skew=10).reason is Reason.OK
    assert verify(source, f"/v/a?token={token}", NOW + 10).reason is Reason.OK


@pytest.mark.parametrize(
    ("bound", "client", "reason"),
    [
        (CLIENT_IP, CLIENT_IP, Reason.OK),
        ("203.0.113.0/24", CLIENT_IP, Reason.OK),
        ("203.0.113.0/24", "::ffff:203.0.113.9", Reason.OK),
        ("198.51.100.7", CLIENT_IP, Reason.IP_MISMATCH),
        ("2001:db8::/32", CLIENT_IP, Reason.IP_MISMATCH),
        (CLIENT_IP, None, Reason.IP_MISMATCH),
        ("203.0.113.5/24", CLIENT_IP, Reason.MALFORMED),  # host bits set
        ("somewhere", CLIENT_IP, Reason.MALFORMED),
    ],
)
def test_ip_claim(bound: str, client: str | None, reason: Reason) -> None:
    key = key_for("ES256")
    token = pyjwt_token(key, {"sub": "/v/a", "exp": EXP, "ip": bound})
    verdict = verify(source_for("ES256"), f"/v/a?token={token}", ip=client)
    assert verdict.reason is reason
    assert verdict.shareable is False  # bound to the client: never through the auth cache


def test_cookie_token_is_never_shared_and_the_url_wins() -> None:
    key = key_for("ES256")
    token = pyjwt_token(key, {"sub": "/v/", "exp": EXP})
    source = source_for("ES256", accept_cookies=True, token_cookie="vt")
    verdict = verify(source, "/v/a/b.ts?w=1", cookies=f"other=1; vt={token}")
    assert (verdict.reason, verdict.shareable) == (Reason.OK, False)
    assert verify(source, "/v/a/b.ts", cookies=f"vt={token}; vt={token}").reason is (
        Reason.NON_CANONICAL
    )
    # A URL token is decided by the URL, whatever the cookie says.
    other = pyjwt_token(key, {"sub": "/v/zzz", "exp": EXP})
    assert verify(source, f"/v/a/b.ts?token={other}", cookies=f"vt={token}").reason is (
        Reason.INVALID
    )
    assert verify(source_for("ES256"), "/v/a/b.ts", cookies=f"jwt={token}").reason is (
        Reason.MISSING
    )


def test_sign_cookie_grant() -> None:
    source = source_for("ES256", accept_cookies=True)
    signed = source.sign(sign_request("/v/a/b.ts", Grant(expires=EXP, cookies=True)))
    assert signed.url == "/v/a/b.ts"
    (cookie,) = signed.cookies
    assert cookie.startswith("jwt=") and "; Path=/v/;" in cookie
    token = cookie.partition(";")[0].partition("=")[2]
    verdict = verify(source, "/v/other/c.ts", cookies=f"jwt={token}")
    assert (verdict.reason, verdict.shareable) == (Reason.OK, False)


@pytest.mark.parametrize(
    ("url", "grant", "settings"),
    [
        ("/v/a.jpg", {}, {}),  # no expiry
        ("/v/a.jpg?token=x", {"expires": EXP}, {}),
        ("/v/a.jpg", {"expires": EXP, "prefix": "/w/"}, {}),
        ("/v/a.jpg", {"expires": EXP, "prefix": "/v/b/"}, {}),  # does not open the URL
        ("/v/a.jpg", {"expires": EXP, "resource": "/v/*.jpg"}, {}),  # glob only
        ("/v/a.jpg", {"expires": EXP, "prefix": "/v/"}, {"scope": "exact"}),
        ("/v/a.jpg", {"expires": EXP, "client_ip": "nowhere"}, {}),
        ("/v/a.jpg", {"expires": EXP, "cookies": True}, {}),  # cookies not accepted
    ],
)
def test_sign_refuses(url: str, grant: dict[str, Any], settings: dict[str, Any]) -> None:
    with pytest.raises(SchemeError):
        sign(source_for("HS256", **settings), url, **grant)


def test_sign_carries_not_before_address_and_pattern() -> None:
    source = source_for("EdDSA", scope="glob", issuer="https://auth/", audience="img")
    signed = sign(source, "/v/a/1.ts", expires=EXP, not_before=NOW - 5,
                  client_ip="203.0.113.0/24", resource="/v/a/*.ts")  # fmt: skip
    token = signed.rpartition("token=")[2]
    claims = pyjwt.decode(token, key_for("EdDSA").public_pem or b"", algorithms=["EdDSA"],
                          audience="img", options=NO_TIMES)  # fmt: skip
    assert claims == {"sub": "/v/a/*.ts", "exp": EXP, "nbf": NOW - 5, "ip": "203.0.113.0/24",
                      "iss": "https://auth/", "aud": "img"}  # fmt: skip
    assert verify(source, f"/v/a/2.ts?token={token}").reason is Reason.OK


def test_a_source_with_only_public_keys_cannot_sign() -> None:
    source = build_source("jwt", [key_for("ES256").material(signs=False)], prefix="/v/")
    with pytest.raises(SchemeError, match="sign"):
        sign(source, "/v/a.jpg", expires=EXP)


def test_scheme_declarations() -> None:
    scheme = schemes.get("jwt")
    assert scheme is not None
    assert scheme.default_deny_status == 401
    assert scheme.key_ids_in_url is False  # one identity provider may serve several sources
    pair = scheme.new_key("es256")
    assert pair.private_pem and pair.public_pem and pair.secret is None
    secret = scheme.new_key("hmac").secret
    assert secret is not None and len(secret) >= 64
