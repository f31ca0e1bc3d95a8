"""``jwt`` end to end: tokens of PyJWT and joserfc for every algorithm, and the sidecar's
own, through the real nginx and sidecar; attacks answered 401 with their reason."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Callable
from typing import Any

import pytest

from sidecar import config
from sidecar.devtools.local_stack import LocalStack
from sidecar.policy.signing import sign_url
from tests.support.configs import TomlValue, sidecar_config, source_toml
from tests.support.jwt_keys import ALGORITHMS, joserfc_token, key_for, pyjwt_token
from tests.support.requests import HOST, fetch_with_reason
from tests.support.stacks import StackFactory, any_image_in, image_bytes

ORIGIN = f"https://{HOST}"
IMAGE = "/books/x.png"


@pytest.fixture(scope="module")
def stack(shared_stacks: StackFactory, tmp_path_factory: pytest.TempPathFactory) -> LocalStack:
    folder = tmp_path_factory.mktemp("jwt-keys")
    keys: dict[str, dict[str, TomlValue]] = {}
    for algorithm in ALGORITHMS:
        key = key_for(algorithm)
        keys[key.kid] = dict(key.toml(folder))
    signer = key_for("ES256", "signer")
    (folder / "signer.pem").write_bytes(signer.private_pem or b"")
    keys = {signer.kid: {**signer.toml(folder), "private_key_file": str(folder / "signer.pem")},
            **keys}  # fmt: skip
    source = source_toml("books", "jwt", "/books/", keys, accept_cookies=True, max_ttl=3600)
    return shared_stacks(sidecar_config(source, server={"clock_skew": 0}))


def claims(sub: str = IMAGE, **more: Any) -> dict[str, Any]:
    return {"sub": sub, "exp": int(time.time()) + 300, **more}


@pytest.mark.parametrize("algorithm", ALGORITHMS)
@pytest.mark.parametrize("signer", [pyjwt_token, joserfc_token], ids=["pyjwt", "joserfc"])
def test_third_party_tokens_serve_the_image(
    stack: LocalStack, algorithm: str, signer: Callable[..., str]
) -> None:
    token = signer(key_for(algorithm), claims("/books/"))
    status, body, reason = fetch_with_reason(stack, f"{IMAGE}?w=1&token={token}")
    assert (status, reason) == (200, "ok")
    assert body == image_bytes(stack, IMAGE)


def test_our_signed_url_and_cookie(stack: LocalStack) -> None:
    settings = config.load(stack.config_path)
    signed = sign_url(settings, "books", ORIGIN + IMAGE, now=time.time(), expires_in=300)
    status, body, reason = fetch_with_reason(stack, signed.removeprefix(ORIGIN))
    assert (status, reason, body) == (200, "ok", image_bytes(stack, IMAGE))
    token = pyjwt_token(key_for("EdDSA"), claims("/books/"))
    status, body, reason = fetch_with_reason(stack, IMAGE, headers={"Cookie": f"jwt={token}"})
    assert (status, reason, body) == (200, "ok", image_bytes(stack, IMAGE))


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def hs_forged_with_public_key() -> str:
    """Algorithm confusion: HS256 under the RSA key's kid, its public PEM as the secret."""
    rsa = key_for("RS256")
    head = b64(json.dumps({"alg": "HS256", "kid": rsa.kid}).encode())
    body = b64(json.dumps(claims()).encode())
    signature = hmac.digest(rsa.public_pem or b"", f"{head}.{body}".encode(), hashlib.sha256)
    return f"{head}.{body}.{b64(signature)}"


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (lambda: pyjwt_token(key_for("HS256"), claims("/books/other.png")), "invalid"),
        (lambda: pyjwt_token(key_for("HS256"), claims("/public/")), "invalid"),
        (lambda: pyjwt_token(key_for("HS256"), {"sub": IMAGE}), "malformed"),
        (lambda: pyjwt_token(key_for("HS256"), claims(), jku="https://evil/"), "malformed"),
        (lambda: pyjwt_token(key_for("HS256")._replace(kid="../k"), claims()), "unknown_key"),
        (lambda: pyjwt_token(key_for("HS256"), claims(exp=int(time.time()) - 5)), "expired"),
        (lambda: pyjwt_token(key_for("HS256"), claims(exp=int(time.time()) + 7200)),
         "invalid"),  # beyond max_ttl
        (lambda: pyjwt_token(key_for("HS256"), claims(ip="198.51.100.9")), "ip_mismatch"),
        (hs_forged_with_public_key, "invalid"),
        (lambda: "x" * 5000, "malformed"),
    ],
)  # fmt: skip
def test_attacks_are_401_with_their_reason(
    stack: LocalStack, make: Callable[[], str], reason: str
) -> None:
    status, body, answered = fetch_with_reason(stack, f"{IMAGE}?token={make()}")
    assert (status, answered) == (401, reason)
    assert not any_image_in(body, stack)
