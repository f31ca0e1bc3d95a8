"""Scheme ``cloudfront``: the contract, plus URLs signed by botocore's real CloudFrontSigner."""

from __future__ import annotations

import base64
import datetime
import functools
import json
from collections.abc import Callable
from pathlib import Path
from typing import ClassVar

import pytest
from botocore.signers import CloudFrontSigner
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

from sidecar import config
from sidecar.core import canonical
from sidecar.core.verdict import Reason
from sidecar.errors import SchemeError
from sidecar.policy.decide import Decider, RequestFacts
from sidecar.schemes import cloudfront_keys as keys
from sidecar.schemes import cloudfront_policy as policies
from sidecar.schemes.base import KeyMaterial, SourceScheme
from sidecar.schemes.cloudfront import b64decode, b64encode
from tests.support.scheme_contract import (
    LIFETIME,
    NOW,
    Presented,
    SchemeContract,
    build_source,
    sign,
)

ORIGIN = "https://cdn.example.com"
CLIENT_IP = "203.0.113.5"


@functools.cache
def pair(kind: str, label: str) -> tuple[bytes, bytes]:
    """A key pair per (kind, label), made once per test run."""
    return keys.new_key_pair(kind)


def material(key_id: str, kind: str = "rsa", label: str | None = None) -> KeyMaterial:
    private, public = pair(kind, label or key_id)
    return KeyMaterial(key_id, public_key_pem=public, private_key_pem=private)


def build(*materials: KeyMaterial) -> SourceScheme:
    return build_source("cloudfront", materials, settings={"public_origin": ORIGIN})


class _CloudFrontContract(SchemeContract):
    scheme_name: ClassVar[str] = "cloudfront"
    settings: ClassVar[dict[str, str]] = {"public_origin": ORIGIN}
    path_prefix: ClassVar[str] = "/acme/"
    unsigned_url: ClassVar[str] = f"{ORIGIN}/acme/database-internals.jpg?w=400&h=600&fit=crop"
    signature_param: ClassVar[str] = "Signature"
    bad_signature_values: ClassVar[list[str]] = [
        "abc",  # not a multiple of 4
        "ab+c",  # standard base64 alphabet, not CloudFront's
        "ab/c",
        "ab==",
        "a_bc",  # padding in the middle
        "____",
        "%41BCD",
    ]
    kind: ClassVar[str] = "rsa"
    _serial: ClassVar[list[int]] = [0]

    def key_material(self, key_id: str) -> KeyMaterial:
        self._serial[0] += 1
        return material(key_id, self.kind, f"{key_id}-{self._serial[0]}")


class TestCloudFrontRsa(_CloudFrontContract):
    kind = "rsa"


class TestCloudFrontEcdsa(_CloudFrontContract):
    kind = "ecdsa"


class TestCloudFrontCustomPolicy(_CloudFrontContract):
    """The same contract for custom policies (a not-before condition forces one)."""

    signature_param = "Signature"

    def grant(self, expires: int) -> dict[str, int]:
        return {"expires": expires, "not_before": NOW - 3600}

    def sign(self, verifier: SourceScheme, *, expires: int = NOW + LIFETIME) -> Presented:
        signed = super().sign(verifier, expires=expires)
        assert "Policy=" in signed.uri
        return signed


# --- botocore's CloudFrontSigner -------------------------------------------------------

SIGNERS = {
    "rsa-sha1": ("rsa", hashes.SHA1, False),
    "rsa-sha256": ("rsa", hashes.SHA256, True),
    "ecdsa-sha1": ("ecdsa", hashes.SHA1, False),
    "ecdsa-sha256": ("ecdsa", hashes.SHA256, True),
}
PATHS = [
    "/acme/a.jpg",
    "/acme/a.jpg?w=400&h=600",
    "/acme/my%20photo%2B1.jpg",
    "/acme/caf%C3%A9/%E6%97%A5%E6%9C%AC.jpg?lang=%C3%A9",
    "/acme/q.jpg?text=a%26b%3Dc&empty=&flag",
    "/acme/100%25.jpg?x=%25",
]
KEY_IDS = {"rsa": "KRSA2026", "ecdsa": "KEC2026"}


def botocore_signer(name: str) -> tuple[CloudFrontSigner, bool]:
    kind, algorithm, sha256 = SIGNERS[name]
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    private = load_pem_private_key(pair(kind, "botocore")[0], password=None)

    def sign(message: bytes) -> bytes:
        if isinstance(private, rsa.RSAPrivateKey):
            return private.sign(message, padding.PKCS1v15(), algorithm())
        assert isinstance(private, ec.EllipticCurvePrivateKey)
        return private.sign(message, ec.ECDSA(algorithm()))

    return CloudFrontSigner(KEY_IDS[kind], sign), sha256


def when(seconds: int) -> datetime.datetime:
    return datetime.datetime.fromtimestamp(seconds, tz=datetime.UTC)


@pytest.fixture(scope="module")
def policy(tmp_path_factory: pytest.TempPathFactory) -> Decider:
    folder = tmp_path_factory.mktemp("cloudfront")
    for kind in ("rsa", "ecdsa"):
        (folder / f"{kind}.pub.pem").write_bytes(pair(kind, "botocore")[1])
        (folder / f"{kind}.pem").write_bytes(pair(kind, "botocore")[0])
    (folder / "other.pub.pem").write_bytes(pair("rsa", "other-source")[1])
    (folder / "sidecar.toml").write_text(f"""\
[server]
clock_skew = 0

[[sources]]
name = "acme"
scheme = "cloudfront"
path_prefix = "/acme/"
public_origin = "{ORIGIN}"
  [[sources.keys]]
  id = "{KEY_IDS["rsa"]}"
  public_key_file = "rsa.pub.pem"
  private_key_file = "rsa.pem"
  [[sources.keys]]
  id = "{KEY_IDS["ecdsa"]}"
  public_key_file = "ecdsa.pub.pem"

[[sources]]
name = "other"
scheme = "cloudfront"
path_prefix = "/other/"
public_origin = "{ORIGIN}"
  [[sources.keys]]
  id = "KOTHER"
  public_key_file = "other.pub.pem"
""")
    return Decider(config.load(folder / "sidecar.toml"))


def decide(policy: Decider, url: str, now: int = NOW, ip: str = CLIENT_IP) -> tuple[int, Reason]:
    decision = policy.decide(
        RequestFacts(url.removeprefix(ORIGIN), "GET", "cdn.example.com", ip), now
    )
    return decision.status, decision.reason


def canned(name: str, path: str, expires: int = NOW + 600) -> str:
    signer, sha256 = botocore_signer(name)
    url = signer.generate_presigned_url(ORIGIN + path, date_less_than=when(expires))
    return url + ("&Hash-Algorithm=SHA256" if sha256 else "")


def custom(
    name: str,
    path: str,
    *,
    resource: str | None = None,
    expires: int = NOW + 600,
    not_before: int | None = None,
    ip: str | None = None,
) -> str:
    signer, sha256 = botocore_signer(name)
    document = signer.build_policy(
        resource or ORIGIN + path,
        when(expires),
        date_greater_than=when(not_before) if not_before is not None else None,
        ip_address=ip,
    )
    url = signer.generate_presigned_url(ORIGIN + path, policy=document)
    return url + ("&Hash-Algorithm=SHA256" if sha256 else "")


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("name", sorted(SIGNERS))
def test_botocore_canned_urls_verify(policy: Decider, name: str, path: str) -> None:
    assert decide(policy, canned(name, path)) == (200, Reason.OK)


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("name", sorted(SIGNERS))
def test_botocore_custom_urls_verify(policy: Decider, name: str, path: str) -> None:
    url = custom(name, path, not_before=NOW - 60, ip="203.0.113.0/24")
    assert decide(policy, url) == (200, Reason.OK)


def _flip(url: str, old: str, new: str) -> str:
    assert old in url, (old, url)
    return url.replace(old, new, 1)


def _param(url: str, name: str) -> str:
    return url.partition(f"{name}=")[2].partition("&")[0]


def _with_param(url: str, name: str, value: str) -> str:
    return url.replace(f"{name}={_param(url, name)}", f"{name}={value}", 1)


def _alter_policy(url: str) -> str:
    document = b64decode(_param(url, "Policy"))
    assert document is not None
    return _with_param(url, "Policy", b64encode(document.replace(b"acme", b"acmf")))


def _altered_signature(url: str) -> str:
    signature = _param(url, "Signature")
    return _with_param(url, "Signature", ("B" if signature[0] == "A" else "A") + signature[1:])


def _other_key_signature(url: str) -> str:
    """The same request signed by a key other than the one Key-Pair-Id names."""
    key_id = _param(url, "Key-Pair-Id")
    other = "ecdsa-sha1" if key_id == KEY_IDS["rsa"] else "rsa-sha1"
    forged = canned(other, "/acme/a.jpg?w=400&h=600")
    return _with_param(url, "Signature", _param(forged, "Signature"))


TAMPERINGS: dict[str, tuple[Callable[[str], str], Reason]] = {
    "path": (lambda u: _flip(u, "/a.jpg", "/b.jpg"), Reason.INVALID),
    "param value": (lambda u: _flip(u, "w=400", "w=401"), Reason.INVALID),
    "param added": (lambda u: _flip(u, "?w=400", "?w=400&x=1"), Reason.INVALID),
    "param removed": (lambda u: _flip(u, "w=400&", ""), Reason.INVALID),
    "signature altered": (_altered_signature, Reason.INVALID),
    "signature truncated": (
        lambda u: _with_param(u, "Signature", _param(u, "Signature")[:-4]),
        Reason.INVALID,
    ),
    "signature cut off": (
        lambda u: _with_param(u, "Signature", _param(u, "Signature")[:-1]),
        Reason.MALFORMED,
    ),
    "signature of another key": (_other_key_signature, Reason.INVALID),
    "key of another source": (
        lambda u: _with_param(u, "Key-Pair-Id", "KOTHER"),
        Reason.UNKNOWN_KEY,
    ),
    "unknown key": (lambda u: _with_param(u, "Key-Pair-Id", "KNOPE"), Reason.UNKNOWN_KEY),
    "signature removed": (
        lambda u: _flip(u, f"Signature={_param(u, 'Signature')}&", ""),
        Reason.MISSING,
    ),
    "key id removed": (
        lambda u: _flip(u, f"&Key-Pair-Id={_param(u, 'Key-Pair-Id')}", ""),
        Reason.MISSING,
    ),
    "signature doubled": (
        lambda u: u + "&Signature=" + _param(u, "Signature"),
        Reason.NON_CANONICAL,
    ),
    "expires changed": (
        lambda u: _with_param(u, "Expires", str(int(_param(u, "Expires")) + 1)),
        Reason.INVALID,
    ),
    "sha256 claimed for sha1": (lambda u: u + "&Hash-Algorithm=SHA256", Reason.INVALID),
    "unknown hash algorithm": (lambda u: u + "&Hash-Algorithm=MD5", Reason.MALFORMED),
}


@pytest.mark.parametrize("tampering", sorted(TAMPERINGS))
@pytest.mark.parametrize("name", ["rsa-sha1", "ecdsa-sha1"])
def test_tampered_canned_urls_are_denied(policy: Decider, name: str, tampering: str) -> None:
    change, reason = TAMPERINGS[tampering]
    url = canned(name, "/acme/a.jpg?w=400&h=600")
    assert decide(policy, url) == (200, Reason.OK)
    if tampering == "signature truncated" and name.startswith("ecdsa"):
        reason = Reason.INVALID  # a shorter DER blob is still well-formed base64
    assert decide(policy, change(url)) == (403, reason)


CUSTOM_TAMPERINGS: dict[str, tuple[Callable[[str], str], Reason]] = {
    "policy altered": (_alter_policy, Reason.INVALID),
    "policy not base64": (lambda u: _with_param(u, "Policy", "!!!!"), Reason.MALFORMED),
    "policy and expires": (lambda u: u + "&Expires=2000000000", Reason.MALFORMED),
    "path": (lambda u: _flip(u, "/a.jpg", "/b.jpg"), Reason.INVALID),
    "param added": (lambda u: _flip(u, "?w=400", "?w=400&x=1"), Reason.INVALID),
}


@pytest.mark.parametrize("tampering", sorted(CUSTOM_TAMPERINGS))
@pytest.mark.parametrize("name", ["rsa-sha256", "ecdsa-sha256"])
def test_tampered_custom_urls_are_denied(policy: Decider, name: str, tampering: str) -> None:
    change, reason = CUSTOM_TAMPERINGS[tampering]
    url = custom(name, "/acme/a.jpg?w=400&h=600")
    assert decide(policy, url) == (200, Reason.OK)
    assert decide(policy, change(url)) == (403, reason)


@pytest.mark.parametrize("name", sorted(SIGNERS))
def test_time_and_address_conditions(policy: Decider, name: str) -> None:
    url = custom(name, "/acme/a.jpg", expires=NOW + 100, not_before=NOW + 10, ip="198.51.100.0/24")
    client = "198.51.100.77"
    assert decide(policy, url, NOW + 50, client) == (200, Reason.OK)
    assert decide(policy, url, NOW + 100, client) == (403, Reason.EXPIRED)
    assert decide(policy, url, NOW + 9, client) == (403, Reason.NOT_YET_VALID)
    assert decide(policy, url, NOW + 50, "198.51.101.77") == (403, Reason.IP_MISMATCH)
    assert decide(policy, url, NOW + 50, "::ffff:198.51.100.77") == (200, Reason.OK)
    assert decide(policy, url, NOW + 50, "2001:db8::1") == (403, Reason.IP_MISMATCH)
    assert decide(policy, url, NOW + 50, "not-an-ip") == (403, Reason.IP_MISMATCH)


def test_expired_canned_url(policy: Decider) -> None:
    url = canned("rsa-sha1", "/acme/a.jpg", expires=NOW + 5)
    assert decide(policy, url, NOW + 4) == (200, Reason.OK)
    assert decide(policy, url, NOW + 5) == (403, Reason.EXPIRED)


def test_ipv6_source_ip(policy: Decider) -> None:
    url = custom("ecdsa-sha1", "/acme/a.jpg", ip="2001:db8:abcd::/48")
    assert decide(policy, url, ip="2001:db8:abcd:12::7") == (200, Reason.OK)
    assert decide(policy, url, ip="2001:db8:abce::7") == (403, Reason.IP_MISMATCH)
    assert decide(policy, url, ip="192.0.2.1") == (403, Reason.IP_MISMATCH)


def test_ip_bound_allows_are_never_cached(policy: Decider) -> None:
    bound = custom("rsa-sha1", "/acme/a.jpg", ip="203.0.113.0/24")
    free = canned("rsa-sha1", "/acme/a.jpg", expires=NOW + 30)
    bound_decision = policy.decide(
        RequestFacts(bound.removeprefix(ORIGIN), "GET", None, CLIENT_IP), NOW
    )
    free_decision = policy.decide(
        RequestFacts(free.removeprefix(ORIGIN), "GET", None, CLIENT_IP), NOW
    )
    assert bound_decision.reason is Reason.OK and bound_decision.cache_ttl == 0
    assert free_decision.reason is Reason.OK and 0 < free_decision.cache_ttl <= 30


@pytest.mark.parametrize(
    ("resource", "path", "allowed"),
    [
        (f"{ORIGIN}/acme/*", "/acme/any/deep/file.jpg?w=1", True),
        (f"{ORIGIN}/acme/*.jpg", "/acme/x.jpg", True),
        (f"{ORIGIN}/acme/*.jpg", "/acme/x.png", False),
        (f"{ORIGIN}/acme/?.jpg", "/acme/x.jpg", True),
        (f"{ORIGIN}/acme/?.jpg", "/acme/xy.jpg", False),
        (f"{ORIGIN}/acme/a.jpg", "/acme/a.jpg?w=1", False),
        ("http*://cdn.example.com/acme/*", "/acme/a.jpg", True),
        ("https://other.example.com/acme/*", "/acme/a.jpg", False),
    ],
)
def test_wildcard_resources(policy: Decider, resource: str, path: str, allowed: bool) -> None:
    url = custom("rsa-sha1", path, resource=resource)
    assert decide(policy, url) == ((200, Reason.OK) if allowed else (403, Reason.INVALID))


@pytest.mark.parametrize(
    ("pattern", "text", "expected"),
    [
        ("*", "", True),
        ("", "", True),
        ("", "a", False),
        ("a*b*c", "aXXbYYc", True),
        ("a*b*c", "aXXbYY", False),
        ("a?c", "abc", True),
        ("a?c", "ac", False),
        ("**", "anything", True),
        ("*a", "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb", False),
    ],
)
def test_wildcard_matcher(pattern: str, text: str, expected: bool) -> None:
    assert policies.matches(pattern, text) is expected


def test_signing_params_in_any_order(policy: Decider) -> None:
    url = canned("rsa-sha1", "/acme/a.jpg?w=400&h=600")
    path, _, query = url.partition("?")
    params = query.split("&")
    reordered = f"{path}?{params[2]}&w=400&{params[3]}&{params[4]}&h=600"
    assert decide(policy, reordered) == (200, Reason.OK)


def test_encoded_signing_param_names_are_refused(policy: Decider) -> None:
    url = canned("rsa-sha1", "/acme/a.jpg")
    assert decide(policy, url.replace("Signature=", "%53ignature=")) == (403, Reason.MALFORMED)


# --- custom policies are parsed strictly, and only after their signature holds ----------


def _signed_document(document: bytes, path: str = "/acme/a.jpg") -> str:
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    private = load_pem_private_key(pair("rsa", "botocore")[0], password=None)
    assert isinstance(private, rsa.RSAPrivateKey)
    signature = private.sign(document, padding.PKCS1v15(), hashes.SHA1())
    return (f"{ORIGIN}{path}?Policy={b64encode(document)}&Signature={b64encode(signature)}"
            f"&Key-Pair-Id={KEY_IDS['rsa']}")  # fmt: skip


GOOD = {
    "Resource": f"{ORIGIN}/acme/a.jpg",
    "Condition": {"DateLessThan": {"AWS:EpochTime": NOW + 60}},
}


@pytest.mark.parametrize(
    ("document", "reason"),
    [
        (json.dumps({"Statement": [GOOD]}).encode(), Reason.OK),
        (json.dumps({"Statement": [GOOD, GOOD]}).encode(), Reason.MALFORMED),
        (json.dumps({"Statement": []}).encode(), Reason.MALFORMED),
        (json.dumps({"Statement": GOOD}).encode(), Reason.MALFORMED),
        (json.dumps({"Statement": [GOOD], "Extra": 1}).encode(), Reason.MALFORMED),
        (
            b'{"Statement":[{"Resource":"x","Resource":"' + ORIGIN.encode() + b'/acme/a.jpg",'
            b'"Condition":{"DateLessThan":{"AWS:EpochTime":' + str(NOW + 60).encode() + b"}}}]}",
            Reason.MALFORMED,
        ),
        (
            json.dumps(
                {
                    "Statement": [
                        {**GOOD, "Condition": {"DateLessThan": {"AWS:EpochTime": NOW + 60.5}}}
                    ]
                }
            ).encode(),
            Reason.MALFORMED,
        ),
        (
            json.dumps(
                {
                    "Statement": [
                        {**GOOD, "Condition": {"DateLessThan": {"AWS:EpochTime": str(NOW + 60)}}}
                    ]
                }
            ).encode(),
            Reason.MALFORMED,
        ),
        (
            json.dumps(
                {"Statement": [{**GOOD, "Condition": {"DateLessThan": {"AWS:EpochTime": True}}}]}
            ).encode(),
            Reason.MALFORMED,
        ),
        (json.dumps({"Statement": [{**GOOD, "Condition": {}}]}).encode(), Reason.MALFORMED),
        (json.dumps({"Statement": [{"Resource": GOOD["Resource"]}]}).encode(), Reason.MALFORMED),
        (
            json.dumps(
                {"Statement": [{**GOOD, "Condition": {**GOOD["Condition"], "StringLike": {}}}]}
            ).encode(),
            Reason.MALFORMED,
        ),
        (
            json.dumps(
                {
                    "Statement": [
                        {
                            **GOOD,
                            "Condition": {
                                **GOOD["Condition"],
                                "IpAddress": {"AWS:SourceIp": "nope"},
                            },
                        }
                    ]
                }
            ).encode(),
            Reason.MALFORMED,
        ),
        (json.dumps({"Statement": [{"Condition": GOOD["Condition"]}]}).encode(), Reason.OK),
        (b"not json", Reason.MALFORMED),
        (b"[" * 5000, Reason.MALFORMED),
        (json.dumps({"Statement": [GOOD]}).encode() + b" x", Reason.MALFORMED),
    ],
)
def test_custom_policy_parsing_is_strict(policy: Decider, document: bytes, reason: Reason) -> None:
    status, got = decide(policy, _signed_document(document))
    assert got is reason
    assert status == (200 if reason is Reason.OK else 403)


def test_unsigned_policy_is_never_parsed(policy: Decider) -> None:
    # A malformed policy with a bad signature is "invalid", not "malformed": parsing
    # happens only after the signature holds, so hostile JSON never reaches the parser.
    url = _signed_document(b"not json")
    forged = _with_param(url, "Signature", _param(_signed_document(b"{}"), "Signature"))
    assert decide(policy, forged) == (403, Reason.INVALID)


# --- our signer against botocore's ------------------------------------------------------


@pytest.mark.parametrize("path", PATHS)
def test_our_canned_urls_equal_botocores(policy: Decider, path: str) -> None:
    source = policy.settings.source("acme")
    assert source is not None and source.verifier is not None
    ours = sign(source.verifier, ORIGIN + path, expires=NOW + 600)
    assert ours == canned("rsa-sha1", path)
    assert decide(policy, ours) == (200, Reason.OK)


@pytest.mark.parametrize("path", PATHS[:3])
def test_our_custom_urls_equal_botocores(policy: Decider, path: str) -> None:
    source = policy.settings.source("acme")
    assert source is not None and source.verifier is not None
    ours = sign(
        source.verifier,
        ORIGIN + path,
        expires=NOW + 600,
        not_before=NOW - 60,
        client_ip="203.0.113.0/24",
    )
    assert ours == custom("rsa-sha1", path, not_before=NOW - 60, ip="203.0.113.0/24")
    wildcard = sign(source.verifier, ORIGIN + path, expires=NOW + 600, resource=f"{ORIGIN}/acme/*")
    assert wildcard == custom("rsa-sha1", path, resource=f"{ORIGIN}/acme/*")


def test_sign_refuses_what_would_never_verify(policy: Decider) -> None:
    source = policy.settings.source("acme")
    assert source is not None and source.verifier is not None
    with pytest.raises(SchemeError):
        sign(source.verifier, "https://elsewhere.example.com/acme/a.jpg", expires=NOW)
    with pytest.raises(SchemeError):
        sign(source.verifier, ORIGIN + "/acme/../a.jpg", expires=NOW)
    with pytest.raises(SchemeError):
        sign(source.verifier, ORIGIN + "/acme/a.jpg?Expires=1", expires=NOW)
    with pytest.raises(SchemeError):
        sign(source.verifier, ORIGIN + "/acme/a.jpg")  # no expiry
    with pytest.raises(SchemeError):
        sign(source.verifier, ORIGIN + "/acme/a.jpg", expires=NOW, client_ip="nope")


# --- configuration ----------------------------------------------------------------------


def _cloudfront_config(
    folder: Path, keys_toml: str, origin: str = f'public_origin = "{ORIGIN}"'
) -> Path:
    (folder / "sidecar.toml").write_text(f"""[[sources]]
name = "a"
scheme = "cloudfront"
path_prefix = "/a/"
{origin}
{keys_toml}
""")
    return folder / "sidecar.toml"


def test_config_problems_are_reported(tmp_path: Path) -> None:
    (tmp_path / "rsa.pub.pem").write_bytes(pair("rsa", "cfg")[1])
    (tmp_path / "other.pem").write_bytes(pair("rsa", "cfg-other")[0])
    (tmp_path / "junk.pem").write_bytes(
        b"-----BEGIN PUBLIC KEY-----\nnope\n-----END PUBLIC KEY-----\n"
    )
    keys_toml = """  [[sources.keys]]
  id = "K1"
  public_key_file = "rsa.pub.pem"
  private_key_file = "other.pem"
  [[sources.keys]]
  id = "K2"
  public_key_file = "junk.pem"
  [[sources.keys]]
  id = "K3"
  secret = "not for cloudfront"
"""
    with pytest.raises(config.ConfigError) as error:
        config.load(_cloudfront_config(tmp_path, keys_toml, origin=""))
    text = "\n".join(error.value.problems)
    assert "public_origin" in text
    assert "does not match" in text
    assert "not a PEM public key" in text
    assert "K3" in text or "secret" in text


def test_a_key_pair_id_belongs_to_one_source(tmp_path: Path) -> None:
    (tmp_path / "rsa.pub.pem").write_bytes(pair("rsa", "cfg")[1])
    (tmp_path / "sidecar.toml").write_text(f"""[[sources]]
name = "a"
scheme = "cloudfront"
path_prefix = "/a/"
public_origin = "{ORIGIN}"
  [[sources.keys]]
  id = "KSAME"
  public_key_file = "rsa.pub.pem"

[[sources]]
name = "b"
scheme = "cloudfront"
path_prefix = "/b/"
public_origin = "{ORIGIN}"
  [[sources.keys]]
  id = "KSAME"
  public_key_file = "rsa.pub.pem"
""")
    with pytest.raises(config.ConfigError) as error:
        config.load(tmp_path / "sidecar.toml")
    assert any("KSAME" in problem for problem in error.value.problems)


def test_small_rsa_keys_are_refused(tmp_path: Path) -> None:
    from cryptography.hazmat.primitives import serialization

    small = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    (tmp_path / "small.pub.pem").write_bytes(
        small.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    keys_toml = '  [[sources.keys]]\n  id = "K"\n  public_key_file = "small.pub.pem"\n'
    with pytest.raises(config.ConfigError) as error:
        config.load(_cloudfront_config(tmp_path, keys_toml))
    assert any("2048" in problem for problem in error.value.problems)


def test_strict_base64() -> None:
    assert b64decode(b64encode(b"\x00\xff" * 10)) == b"\x00\xff" * 10
    for bad in ["", "a", "ab=c", "ab+/", "YQ==", "Y Q__", "YQ_"]:
        assert b64decode(bad) is None, bad
    assert base64.b64encode(b"a").decode() == "YQ=="  # the alphabet swap, explained
    assert b64decode("YQ__") == b"a"


def test_canonical_is_required_before_verify() -> None:
    assert canonical.parse("/acme/a.jpg?Signature=x#frag") is None


@pytest.mark.parametrize(
    "resource",
    [f"{ORIGIN}/acme/a.jpg", f'{ORIGIN}/acme/caf\u00e9 "q"\\x.jpg?a=1&b=%20', f"{ORIGIN}/\u65e5"],
)
@pytest.mark.parametrize("ascii_only", [True, False])
def test_fast_canned_policy_equals_the_generic_builder(resource: str, ascii_only: bool) -> None:
    expected = policies.build(policies.PolicyStatement(NOW, resource), ascii_only=ascii_only)
    assert policies.canned(resource, NOW, ascii_only=ascii_only) == expected
