"""Scheme ``jwt``: each known attack on JWT verifiers, a clear denial with its reason
(never an exception), in one table; and what a JWKS may not hold."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Callable
from typing import Any

import pytest

from sidecar.core.verdict import Reason
from sidecar.schemes.base import KeyMaterial, SourceScheme
from sidecar.schemes.jwt_keys import MAX_JWKS_BYTES, parse_jwks
from tests.support.jwt_keys import key_for, pyjwt_token
from tests.support.scheme_contract import NOW, build_source, verify

EXP = NOW + 600
CLAIMS = {"sub": "/v/abc", "exp": EXP}
RSA = key_for("RS256")
HS = key_for("HS256")


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def hand_made(header: dict[str, Any] | str, claims: dict[str, Any] | str, secret: bytes) -> str:
    """A token written byte by byte and HMAC-SHA256 signed: what a forger with a key (or
    who thinks it has one) would send."""
    head = b64((header if isinstance(header, str) else json.dumps(header)).encode())
    body = b64((claims if isinstance(claims, str) else json.dumps(claims)).encode())
    mac = hmac.digest(secret, f"{head}.{body}".encode(), hashlib.sha256)
    return f"{head}.{body}.{b64(mac)}"


def respelled(encode: Callable[[bytes], str]) -> str:
    """A token whose header and claims are written by ``encode`` (a second spelling of
    base64) and signed over that text, as a lenient signer would: only the spelling is
    wrong. The claims are padded until the spelling differs from base64url's."""
    header = json.dumps({"alg": "HS256", "kid": HS.kid}).encode()
    for pad in ("", "?", "??", "~", "~~", "~~~"):  # bounded: one of them differs
        claims = json.dumps({**CLAIMS, "x": "~~~???" + pad}).encode()
        head, body = encode(header), encode(claims)
        if head + body != b64(header) + b64(claims):
            break
    else:
        raise AssertionError("no respelling differs")
    mac = hmac.digest(HS.secret or b"", f"{head}.{body}".encode(), hashlib.sha256)
    return f"{head}.{body}.{b64(mac)}"


def source() -> SourceScheme:
    return build_source("jwt", [RSA.material(), HS.material()], prefix="/v/")


def other_source_token() -> str:
    # Signed by a key this source also holds, for another source's files.
    return pyjwt_token(HS, {"sub": "/w/abc", "exp": EXP})


def restyled(token: str, change: Callable[[str], str]) -> str:
    head, body, signature = token.split(".")
    return ".".join((head, change(body), signature))


ATTACKS: list[tuple[str, Callable[[], str], Reason]] = [
    (
        "alg none",
        lambda: hand_made({"alg": "none", "kid": HS.kid}, CLAIMS, b"")[:-43],
        Reason.MALFORMED,
    ),
    (
        "alg none with a signature",
        lambda: hand_made({"alg": "none", "kid": HS.kid}, CLAIMS, HS.secret or b""),
        Reason.INVALID,
    ),
    # The RSA public key (PEM) as an HMAC secret, under the RSA key's kid.
    (
        "algorithm confusion",
        lambda: hand_made({"alg": "HS256", "kid": RSA.kid}, CLAIMS, RSA.public_pem or b""),
        Reason.INVALID,
    ),
    (
        "alg differs from the key's",
        lambda: pyjwt_token(
            key_for("RS512", RSA.kid)._replace(private_pem=RSA.private_pem), CLAIMS
        ),
        Reason.INVALID,
    ),
    (
        "padded base64",
        lambda: respelled(lambda data: base64.urlsafe_b64encode(data).decode()),
        Reason.MALFORMED,
    ),
    (
        "standard alphabet",
        lambda: respelled(lambda data: base64.b64encode(data).decode().rstrip("=")),
        Reason.MALFORMED,
    ),
    (
        "duplicate sub",
        lambda: hand_made(
            {"alg": "HS256", "kid": HS.kid},
            f'{{"sub":"/v/zzz","sub":"/v/abc","exp":{EXP}}}',
            HS.secret or b"",
        ),
        Reason.MALFORMED,
    ),
    (
        "duplicate alg",
        lambda: hand_made('{"alg":"none","alg":"HS256","kid":"k-hs256"}', CLAIMS, HS.secret or b""),
        Reason.MALFORMED,
    ),
    ("missing exp", lambda: pyjwt_token(HS, {"sub": "/v/abc"}), Reason.MALFORMED),
    (
        "fractional exp",
        lambda: pyjwt_token(HS, {"sub": "/v/abc", "exp": EXP + 0.5}),
        Reason.MALFORMED,
    ),
    ("exp as text", lambda: pyjwt_token(HS, {"sub": "/v/abc", "exp": str(EXP)}), Reason.MALFORMED),
    (
        "NaN",
        lambda: hand_made(
            {"alg": "HS256", "kid": HS.kid},
            f'{{"sub":"/v/abc","exp":{EXP},"n":NaN}}',
            HS.secret or b"",
        ),
        Reason.MALFORMED,
    ),
    (
        "byte-order mark before the claims",
        lambda: hand_made(
            {"alg": "HS256", "kid": HS.kid},
            f'\ufeff{{"sub":"/v/abc","exp":{EXP}}}',
            HS.secret or b"",
        ),
        Reason.MALFORMED,
    ),
    (
        "a second JSON value after the claims",
        lambda: hand_made(
            {"alg": "HS256", "kid": HS.kid},
            f'{{"sub":"/v/abc","exp":{EXP}}} {{}}',
            HS.secret or b"",
        ),
        Reason.MALFORMED,
    ),
    ("huge token", lambda: pyjwt_token(HS, {**CLAIMS, "pad": "x" * 5000}), Reason.MALFORMED),
    (
        "kid with ../",
        lambda: pyjwt_token(HS._replace(kid="../../etc/passwd"), CLAIMS),
        Reason.UNKNOWN_KEY,
    ),
    (
        "kid with SQL",
        lambda: pyjwt_token(HS._replace(kid="' OR '1'='1"), CLAIMS),
        Reason.UNKNOWN_KEY,
    ),
    (
        "no kid with two keys",
        lambda: hand_made({"alg": "HS256"}, CLAIMS, HS.secret or b""),
        Reason.UNKNOWN_KEY,
    ),
    ("another source's token", other_source_token, Reason.INVALID),
    ("jku header", lambda: pyjwt_token(HS, CLAIMS, jku="https://evil/jwks"), Reason.MALFORMED),
    (
        "jwk header",
        lambda: pyjwt_token(HS, CLAIMS, jwk={"kty": "oct", "k": "AA"}),
        Reason.MALFORMED,
    ),
    ("x5u header", lambda: pyjwt_token(HS, CLAIMS, x5u="https://evil/cert"), Reason.MALFORMED),
    ("x5c header", lambda: pyjwt_token(HS, CLAIMS, x5c=["MIIB"]), Reason.MALFORMED),
    ("crit header", lambda: pyjwt_token(HS, CLAIMS, crit=["b64"], b64=False), Reason.MALFORMED),
    ("two dots only", lambda: pyjwt_token(HS, CLAIMS).rpartition(".")[0], Reason.MALFORMED),
    ("four parts", lambda: pyjwt_token(HS, CLAIMS) + ".AA", Reason.MALFORMED),
    (
        "header not an object",
        lambda: hand_made('["HS256"]', CLAIMS, HS.secret or b""),
        Reason.MALFORMED,
    ),
    (
        "claims not UTF-8",
        lambda: restyled(pyjwt_token(HS, CLAIMS), lambda _: b64(b"\xff\xfe")),
        Reason.MALFORMED,
    ),
    ("wrong signature length", lambda: pyjwt_token(HS, CLAIMS) + "AAAA", Reason.MALFORMED),
    (
        "scope outside path_prefix",
        lambda: pyjwt_token(HS, {"sub": "/", "exp": EXP}),
        Reason.INVALID,
    ),
]


@pytest.mark.parametrize(("name", "make", "reason"), ATTACKS, ids=[a[0] for a in ATTACKS])
def test_attack_is_denied_with_its_reason(
    name: str, make: Callable[[], str], reason: Reason
) -> None:
    token = make()
    verdict = verify(source(), f"/v/abc/x.ts?token={token}")
    assert verdict.reason is reason, name
    assert verdict.key_id is None


def test_the_table_would_allow_the_honest_token() -> None:
    # The attacks fail for their own reasons, not because the table's source refuses all.
    for key in (HS, RSA):
        assert verify(source(), f"/v/abc/x.ts?token={pyjwt_token(key, CLAIMS)}").valid


def test_a_token_parameter_twice_or_encoded() -> None:
    token = pyjwt_token(HS, CLAIMS)
    assert verify(source(), f"/v/abc?token={token}&token={token}").reason is Reason.NON_CANONICAL
    assert verify(source(), f"/v/abc?%74oken={token}").reason is Reason.MALFORMED


def test_an_hmac_secret_that_is_a_pem_key_is_refused() -> None:
    material = KeyMaterial("k", secret=RSA.public_pem, algorithm="HS256")
    with pytest.raises(Exception, match="PEM"):
        build_source("jwt", [material])


# --- what a JWKS may hold --------------------------------------------------------------------


def jwks(*keys: dict[str, Any]) -> bytes:
    return json.dumps({"keys": list(keys)}).encode()


def test_a_good_set_and_what_is_left_out() -> None:
    es = key_for("ES256").public_jwk()
    found = parse_jwks(jwks(
        es, RSA.public_jwk(), key_for("EdDSA").public_jwk(),
        {**key_for("PS256").public_jwk(), "use": "enc"},
        {"kty": "oct", "k": "c2VjcmV0", "kid": "hs", "alg": "HS256"},
        {**key_for("ES384").public_jwk(), "d": "AAAA"},
        {k: v for k, v in es.items() if k != "alg"} | {"kid": "no-alg"},
        {**es, "kid": "wrong-curve", "alg": "ES384"},
        {**RSA.public_jwk(), "kid": "algorithm-for-another-kty", "alg": "ES256"},
    ))  # fmt: skip
    assert not isinstance(found, str)
    assert [key.id for key in found.keys] == ["k-es256", "k-rs256", "k-eddsa"]
    assert len(found.skipped) == 6


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        (b"x" * (MAX_JWKS_BYTES + 1), "64 KB"),
        (b'{"keys": [], "keys": []}', "not a JWKS"),
        (b"[]", "not a JWKS"),
        (jwks(), "no usable key"),
        (jwks({"kty": "oct", "k": "AA", "kid": "a", "alg": "HS256"}), "no usable key"),
        (jwks(RSA.public_jwk(), RSA.public_jwk()), "kid given twice"),
    ],
)
def test_a_set_that_cannot_be_used(data: bytes, problem: str) -> None:
    found = parse_jwks(data)
    assert isinstance(found, str) and problem in found


def test_a_set_padded_just_under_the_bound_is_read() -> None:
    body = jwks(RSA.public_jwk())
    padded = body[:-1] + b", " + b'"pad": "' + b"x" * (MAX_JWKS_BYTES - len(body) - 12) + b'"}'
    assert len(padded) <= MAX_JWKS_BYTES
    assert not isinstance(parse_jwks(padded), str)
