"""Scheme ``hmac-sha256``: the shared contract, openssl-computed vectors, the answers, CLI."""

from __future__ import annotations

import base64
import itertools
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from sidecar import cli, config, schemes
from sidecar.core.verdict import Reason
from sidecar.errors import SchemeError
from sidecar.policy.decide import Decider, RequestFacts
from sidecar.schemes.base import KeyMaterial, SourceScheme
from tests.support.configs import sidecar_config, source_toml
from tests.support.scheme_contract import SchemeContract, build_source, request_uri, sign
from tests.support.scheme_contract import verify as verify_verdict

VECTORS = json.loads((Path(__file__).parent / "vectors" / "hmac_sha256.json").read_text("utf-8"))
SECRET = "hmac-sha256-test-secret-0001"
NOW = 1_700_000_000
_fresh = itertools.count()


def verifier_for(**secrets: str) -> SourceScheme:
    keys = [KeyMaterial(kid, secret=secret.encode()) for kid, secret in secrets.items()]
    return build_source("hmac-sha256", keys)


def verify(verifier: SourceScheme, uri: str, now: float = NOW) -> Reason:
    return verify_verdict(verifier, request_uri(uri), now).reason


def openssl_sig(secret: bytes, message: bytes) -> str:
    """base64url-nopad HMAC-SHA256, computed by openssl (independent of the sidecar)."""
    binary = shutil.which("openssl")
    assert binary is not None, "openssl is required for the known-answer check"
    command = [binary, "mac", "-digest", "SHA256", "-macopt", f"hexkey:{secret.hex()}"]
    result = subprocess.run(
        [*command, "-binary", "HMAC"], input=message, capture_output=True, check=True, timeout=30
    )
    mac = result.stdout
    assert len(mac) == 32
    return base64.urlsafe_b64encode(mac).decode().rstrip("=")


def signed_with(secret: str, unsigned: str) -> str:
    """``unsigned`` (already holding expires and kid) with a correct ``sig`` appended."""
    return f"{unsigned}&sig={openssl_sig(secret.encode(), unsigned.encode())}"


class TestHmacSha256(SchemeContract):
    scheme_name = "hmac-sha256"
    signature_param = "sig"
    bad_signature_values = (
        "",
        "A" * 42,  # one character short of 32 bytes
        "A" * 44,
        "A" * 41,  # a length base64 never has
        "A" * 42 + "B",  # non-zero unused bits: a second spelling of the same bytes
        "A" * 43 + "=",  # padded
        "A" * 42 + "+",  # the standard alphabet
        "A" * 42 + "/",
        "A" * 40 + "%41",  # percent-encoded base64 is not base64
        "A" * 22,  # a valid base64url of the wrong length (16 bytes)
        "é" * 43,
    )

    def key_material(self, key_id: str) -> KeyMaterial:
        return KeyMaterial(key_id, secret=f"hmac-secret-{next(_fresh):08d}-padding".encode())


# --- known answers, computed by openssl ------------------------------------------------------


def _vector_ids(vector: dict[str, Any]) -> str:
    return str(vector["description"]).replace(" ", "-")


def test_vectors_file_is_substantial() -> None:
    assert VECTORS["scheme"] == "hmac-sha256"
    assert len(VECTORS["vectors"]) >= 8


@pytest.mark.parametrize("vector", VECTORS["vectors"], ids=_vector_ids)
def test_vector_recomputed_by_openssl(vector: dict[str, Any]) -> None:
    # Guards the vectors file: openssl, run now, gives the same signature.
    uri = request_uri(vector["expected_signed_uri"])
    unsigned, _, sig = uri.rpartition("&sig=")
    assert unsigned.endswith(f"expires={vector['expires']}&kid={vector['kid']}")
    assert sig == openssl_sig(vector["secret"].encode(), unsigned.encode())


@pytest.mark.parametrize("vector", VECTORS["vectors"], ids=_vector_ids)
def test_vector_sign(vector: dict[str, Any]) -> None:
    verifier = verifier_for(**{vector["kid"]: vector["secret"]})
    signed = sign(verifier, vector["uri_unsigned"], expires=vector["expires"])
    assert signed == vector["expected_signed_uri"]


@pytest.mark.parametrize("vector", VECTORS["vectors"], ids=_vector_ids)
def test_vector_verify(vector: dict[str, Any]) -> None:
    uri = request_uri(vector["expected_signed_uri"])
    verdict = verify_verdict(verifier_for(**{vector["kid"]: vector["secret"]}), uri, NOW)
    assert (verdict.reason, verdict.key_id) == (Reason.OK, vector["kid"])
    assert verdict.expires_at == vector["expires"]
    wrong = verifier_for(**{vector["kid"]: vector["secret"] + "x"})
    assert verify(wrong, uri) is Reason.INVALID


# --- the answers ----------------------------------------------------------------------------

BASE = "/books/x.png?w=1&expires=1900000000&kid=k1"


def test_a_hand_made_url_in_any_param_order_verifies() -> None:
    # The format is "HMAC over everything before &sig=": expires and kid go anywhere.
    verifier = verifier_for(k1=SECRET)
    for unsigned in (BASE, "/books/x.png?kid=k1&w=1&expires=1900000000"):
        assert verify(verifier, signed_with(SECRET, unsigned)) is Reason.OK


@pytest.mark.parametrize(
    ("unsigned", "reason"),
    [
        ("/books/x.png?w=1&kid=k1", Reason.MISSING),
        ("/books/x.png?w=1&expires=1900000000", Reason.MISSING),
        (BASE + "&expires=1900000000", Reason.NON_CANONICAL),
        (BASE + "&kid=k1", Reason.NON_CANONICAL),
        ("/books/x.png?w=1&expires=01900000000&kid=k1", Reason.MALFORMED),
        ("/books/x.png?w=1&expires=-1&kid=k1", Reason.MALFORMED),
        ("/books/x.png?w=1&%65xpires=1900000000&kid=k1", Reason.MALFORMED),
        ("/books/x.png?w=1&expires=1900000000&%6Bid=k1", Reason.MALFORMED),
        ("/books/x.png?w=1&expires=1900000000&kid=k2", Reason.UNKNOWN_KEY),
        ("/books/x.png?w=1&expires=1900000000&kid=", Reason.UNKNOWN_KEY),
    ],
)
def test_answers_for_correctly_signed_but_wrong_urls(unsigned: str, reason: Reason) -> None:
    # Each is signed over every byte (as if a key leaked): still refused, for its reason.
    assert verify(verifier_for(k1=SECRET), signed_with(SECRET, unsigned)) is reason


def test_missing_signature() -> None:
    assert verify(verifier_for(k1=SECRET), BASE) is Reason.MISSING


def test_signature_not_last_is_malformed() -> None:
    signed = signed_with(SECRET, BASE)
    assert verify(verifier_for(k1=SECRET), signed + "&x=1") is Reason.MALFORMED


def test_duplicated_signature_is_non_canonical() -> None:
    signed = signed_with(SECRET, BASE)
    sig = signed.rpartition("=")[2]
    assert verify(verifier_for(k1=SECRET), signed + f"&sig={sig}") is Reason.NON_CANONICAL


def test_encoded_signature_name_is_malformed() -> None:
    signed = signed_with(SECRET, BASE).replace("&sig=", "&%73ig=")
    assert verify(verifier_for(k1=SECRET), signed) is Reason.MALFORMED


def test_kid_selects_the_key() -> None:
    verifier = verifier_for(new="n" * 32, old="o" * 32)
    assert verifier.key_ids == ("new", "old")
    by_old = signed_with("o" * 32, "/books/x.png?expires=1900000000&kid=old")
    assert verify_verdict(verifier, by_old, NOW).key_id == "old"
    # A signature by the other key under this kid is simply invalid: no trial of keys.
    relabelled = signed_with("o" * 32, "/books/x.png?expires=1900000000&kid=new")
    assert verify(verifier, relabelled) is Reason.INVALID


def test_sign_refuses_without_expiry() -> None:
    with pytest.raises(SchemeError, match="expiry"):
        sign(verifier_for(k1=SECRET), "/books/x.png")


@pytest.mark.parametrize(
    ("url", "grant"),
    [
        ("/books/x.png?sig=abc", {"expires": NOW}),
        ("/books/x.png?expires=1", {"expires": NOW}),
        ("/books/x.png?kid=k1", {"expires": NOW}),
        ("/books/x.png?%6Bid=k1", {"expires": NOW}),
        ("/books/x.png", {"expires": NOW, "not_before": 1}),
        ("/books/x.png", {"expires": NOW, "client_ip": "203.0.113.5"}),
        ("/books/x.png", {"expires": NOW, "cookies": True}),
    ],
)
def test_sign_refuses_what_it_cannot_express(url: str, grant: dict[str, Any]) -> None:
    with pytest.raises(SchemeError):
        sign(verifier_for(k1=SECRET), url, **grant)


@pytest.mark.parametrize(
    ("key", "problem"),
    [
        (KeyMaterial("k1", secret=b"x" * 15), "16"),
        (KeyMaterial("k1"), "16"),
        (KeyMaterial("k 1", secret=b"x" * 32), "kid"),
        (KeyMaterial("k&1", secret=b"x" * 32), "kid"),
    ],
)
def test_build_refuses_weak_or_unsendable_keys(key: KeyMaterial, problem: str) -> None:
    with pytest.raises(SchemeError, match=problem):
        build_source("hmac-sha256", [key])


def test_scheme_declarations() -> None:
    scheme = schemes.get("hmac-sha256")
    assert scheme is not None
    assert scheme.default_deny_status == 403
    assert scheme.key_fields == frozenset({"secret"})
    assert scheme.key_ids_in_url is True
    assert scheme.key_types == ("token",)
    first, second = scheme.new_key("token").secret, scheme.new_key("token").secret
    assert first and second and first != second and len(first) >= 43


def test_repr_hides_secrets() -> None:
    assert "super-secret-hmac-key" not in repr(verifier_for(k1="super-secret-hmac-key"))


# --- through the policy and the command line ---------------------------------------------------


def write_config(folder: Path, **fields: Any) -> Path:
    keys = {"2026-11": {"secret": SECRET}, "2026-05": {"secret": "the-older-secret-0001"}}
    path = folder / "sidecar.toml"
    text = source_toml("books", "hmac-sha256", "/books/", keys, **fields)
    path.write_text(sidecar_config(text, server={"clock_skew": 0}))
    return path


def test_cli_sign_matches_the_vector(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # The openssl-computed vector "path only" is what `sidecar sign` prints at its instant.
    vector = next(v for v in VECTORS["vectors"] if v["description"] == "path only")
    signed = sign(verifier_for(**{"2026-11": SECRET}), "/books/x.png", expires=2_000_000_000)
    assert signed == vector["expected_signed_uri"]
    code = cli.main(["sign", "-c", str(write_config(tmp_path)), "--source", "books",
                     "--expires-in", "300", "https://image.example.com/books/x.png"])  # fmt: skip
    assert code == 0
    printed = capsys.readouterr().out.strip()
    uri = printed.removeprefix("https://image.example.com")
    unsigned, _, sig = uri.rpartition("&sig=")
    assert unsigned.startswith("/books/x.png?expires=") and unsigned.endswith("&kid=2026-11")
    assert sig == openssl_sig(SECRET.encode(), unsigned.encode())


def test_cli_sign_without_expiry_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = cli.main(["sign", "-c", str(write_config(tmp_path)), "--source", "books",
                     "/books/x.png"])  # fmt: skip
    assert code != 0
    assert "expiry" in capsys.readouterr().err


def test_max_ttl_is_enforced_on_verify(tmp_path: Path) -> None:
    decider = Decider(config.load(write_config(tmp_path, max_ttl=600)))
    within = signed_with(SECRET, f"/books/x.png?expires={NOW + 600}&kid=2026-11")
    beyond = signed_with(SECRET, f"/books/x.png?expires={NOW + 601}&kid=2026-11")
    for uri, reason in ((within, Reason.OK), (beyond, Reason.INVALID)):
        decision = decider.decide(RequestFacts(uri, "GET", None, "203.0.113.5"), NOW)
        assert decision.reason is reason


def test_a_kid_names_one_key_across_sources(tmp_path: Path) -> None:
    path = tmp_path / "sidecar.toml"
    key = {"2026-11": {"secret": SECRET}}
    books = source_toml("books", "hmac-sha256", "/books/", key)
    path.write_text(sidecar_config(books, source_toml("other", "hmac-sha256", "/other/", key)))
    with pytest.raises(config.ConfigError, match="2026-11"):
        config.load(path)
