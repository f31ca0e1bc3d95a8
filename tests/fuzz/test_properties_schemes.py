"""Property-based fuzzing of every scheme: random and mutated URIs and random signatures
are never allowed, everything signed verifies, and no single-byte change of a signed URI
still verifies. ECDSA signatures are randomised by the signer, so their bytes differ from
run to run; what a correct verifier decides about them does not.
"""

from __future__ import annotations

import functools
import string
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from sidecar.core import canonical
from sidecar.core.verdict import Reason
from sidecar.schemes import cloudfront_policy as policies
from sidecar.schemes.base import KeyMaterial, SourceScheme, VerifyRequest
from sidecar.schemes.cloudfront import SIGNING_PARAMS, b64encode
from tests.support.properties import (
    CLIENT_IP,
    NOW,
    ORIGIN,
    Tally,
    as_header,
    byte_mutation,
    describe,
    fuzz,
    key_pair,
    mutate_bytes,
    mutate_text,
    own_query,
    path_under,
    single_byte_changes,
    text_mutation,
    with_query,
)
from tests.support.scheme_contract import build_source, request_uri, sign

TALLY = Tally()
count, report = TALLY.count, TALLY.report


def cloudfront_key(key_id: str, kind: str) -> KeyMaterial:
    private, public = key_pair(kind, key_id)
    return KeyMaterial(key_id, public_key_pem=public, private_key_pem=private)


@dataclass(frozen=True)
class SchemeUnderTest:
    name: str
    verifier: SourceScheme
    prefix: str
    reserved: frozenset[str]
    sign_options: dict[str, Any] = field(default_factory=dict)
    origin: str = ""
    signature_bytes: tuple[int, ...] = ()  # lengths of a well-formed signature

    def sign(self, uri: str, expires: int = NOW + 3600) -> str:
        signed = sign(self.verifier, self.origin + uri, expires=expires, **self.sign_options)
        return request_uri(signed)

    def verify(self, uri: str) -> Reason | None:
        """The verdict's reason, or None when the canonical gate already refused the URI."""
        parsed = canonical.parse(uri)
        if parsed is None:
            return None
        verdict = self.verifier.verify(VerifyRequest(parsed, NOW, 0, CLIENT_IP))
        assert isinstance(verdict.reason, Reason)
        return verdict.reason


@functools.cache
def scheme_under_test(name: str) -> SchemeUnderTest:
    if name == "md5-token":
        materials = [
            KeyMaterial("k2026", secret=b"fuzz-token-2026"),
            KeyMaterial("k2025", secret=b"fuzz-token-2025"),
        ]
        verifier = build_source("md5-token", materials, prefix="/books/")
        return SchemeUnderTest(name, verifier, "/books/", frozenset({"s", "expires"}))
    kind, policy = name.split("-")[1:]
    other = "ecdsa" if kind == "rsa" else "rsa"
    verifier = build_source(
        "cloudfront",
        [cloudfront_key(f"K{kind.upper()}", kind), cloudfront_key(f"K{other.upper()}", other)],
        prefix="/acme/",
        settings={"public_origin": ORIGIN},
    )
    options: dict[str, Any] = {"not_before": NOW - 3600} if policy == "custom" else {}
    if policy == "custom" and kind == "rsa":
        options["client_ip"] = "203.0.113.0/24"
    lengths = (256,) if kind == "rsa" else (70, 71, 72)
    return SchemeUnderTest(
        name, verifier, "/acme/", frozenset(SIGNING_PARAMS), options, ORIGIN, lengths
    )


SCHEMES = [
    "md5-token",
    "cloudfront-rsa-canned",
    "cloudfront-ecdsa-canned",
    "cloudfront-rsa-custom",
    "cloudfront-ecdsa-custom",
]


def signed_uris(name: str) -> st.SearchStrategy[str]:
    """Random canonical URIs under the scheme's prefix, signed by the scheme."""
    scheme = scheme_under_test(name)
    return st.builds(
        lambda path, query, lifetime: scheme.sign(with_query(path, query), NOW + lifetime),
        path_under(scheme.prefix),
        own_query(scheme.reserved),
        st.integers(1, 10**7),
    )


def random_uris(name: str) -> st.SearchStrategy[str]:
    prefix = scheme_under_test(name).prefix
    return st.one_of(
        st.text(max_size=120).map(prefix.__add__),
        st.binary(max_size=120).map(lambda b: as_header(prefix.encode() + b)),
        mutated_signed_uris(name),
    )


@st.composite
def mutated_signed_uris(draw: st.DrawFn, name: str) -> str:
    """A signed URI changed by one to three edits (never back into the signed one)."""
    signed = draw(signed_uris(name))
    mutated = signed
    for change in draw(st.lists(text_mutation, min_size=1, max_size=3)):
        mutated = mutate_text(mutated, *change)
    assume(mutated != signed)
    return mutated


@pytest.mark.parametrize("name", SCHEMES)
def test_scheme_never_raises_nor_allows_random_uris(name: str) -> None:
    test = f"{name}: random and mutated URIs"
    wrong: list[str] = []

    @fuzz(250)
    @given(random_uris(name))
    def run(uri: str) -> None:
        count(test)
        if scheme_under_test(name).verify(uri) is Reason.OK:
            wrong.append(uri)

    run()
    report(test, wrong)
    assert wrong == []


def forged_md5(scheme: SchemeUnderTest) -> st.SearchStrategy[str]:
    signature = st.one_of(
        st.binary(min_size=16, max_size=16).map(bytes.hex),
        st.text(string.hexdigits, min_size=30, max_size=34),
        st.text(max_size=40).map(lambda t: quote(t, safe="")),
    )
    expiry = st.one_of(
        st.none(), st.integers(0, 10**13).map(str), st.text("0123456789", max_size=14)
    )

    def build(path: str, query: str | None, s: str, expires: str | None, last: bool) -> str:
        params = [query] if query else []
        params += [f"expires={expires}"] if expires is not None else []
        params.insert(len(params) if last else 0, f"s={s}")
        return f"{path}?{'&'.join(params)}"

    return st.builds(
        build,
        path_under(scheme.prefix),
        own_query(scheme.reserved),
        signature,
        expiry,
        st.booleans(),
    )


def forged_cloudfront(scheme: SchemeUnderTest) -> st.SearchStrategy[str]:
    """Well-formed CloudFront trios with a random signature (and a valid policy, often)."""

    @st.composite
    def build(draw: st.DrawFn) -> str:
        path = draw(path_under(scheme.prefix))
        query = draw(own_query(scheme.reserved))
        resource = ORIGIN + with_query(path, query or None)
        expires = draw(st.integers(NOW - 10, NOW + 10**6))
        params = [query] if query else []
        if draw(st.booleans()):
            params.append(f"Expires={expires}")
        else:
            document = draw(
                st.one_of(
                    st.just(policies.build(policies.PolicyStatement(expires, resource))),
                    st.just(policies.build(policies.PolicyStatement(expires, ORIGIN + "/*"))),
                    st.binary(max_size=200),
                )
            )
            params.append(f"Policy={b64encode(document)}")
        length = draw(st.sampled_from(scheme.signature_bytes) | st.integers(0, 300))
        params.append(f"Signature={b64encode(draw(st.binary(min_size=length, max_size=length)))}")
        key_id = draw(st.sampled_from([*scheme.verifier.key_ids, "KUNKNOWN", ""]))
        params.append(f"Key-Pair-Id={key_id}")
        if draw(st.booleans()):
            params.append(f"Hash-Algorithm={draw(st.sampled_from(['SHA1', 'SHA256', 'MD5']))}")
        order = draw(st.permutations(params)) if draw(st.booleans()) else params
        return f"{path}?{'&'.join(order)}"

    return build()


@pytest.mark.parametrize("name", SCHEMES)
def test_scheme_random_signatures_never_allow(name: str) -> None:
    test = f"{name}: random signatures"
    scheme = scheme_under_test(name)
    forged = forged_md5(scheme) if name == "md5-token" else forged_cloudfront(scheme)
    wrong: list[str] = []

    @fuzz(250)
    @given(forged)
    def run(uri: str) -> None:
        count(test)
        if scheme.verify(uri) is Reason.OK:
            wrong.append(uri)

    run()
    report(test, wrong)
    assert wrong == []


@pytest.mark.parametrize("name", SCHEMES)
def test_sign_then_verify_always_allows(name: str) -> None:
    test = f"{name}: sign -> verify"
    scheme = scheme_under_test(name)
    refused: list[tuple[str, Reason | None]] = []

    @fuzz(150)
    @given(signed_uris(name))
    def run(uri: str) -> None:
        count(test)
        reason = scheme.verify(uri)
        if reason is not Reason.OK:
            refused.append((uri, reason))

    run()
    report(test, [])
    assert refused == []


# Bytes tried at every position: separators, escapes, controls, UTF-8 lead bytes, and
# (added per position) the neighbours and other case of the byte already there.
PROBE_BYTES = b"\x00\t /.%&=?#;\\0129AFZafz_-~+\x7f\x80\xc3\xff"


FIXED_URIS = {  # by path prefix
    "/books/": ["/books/a.jpg", "/books/caf%C3%A9/x.png?w=400&h=600&fit=crop"],
    "/acme/": ["/acme/a.jpg?w=400", "/acme/caf%C3%A9.jpg"],
}


@pytest.mark.parametrize("name", SCHEMES)
def test_every_single_byte_change_of_a_signed_uri_is_refused(name: str) -> None:
    test = f"{name}: every single-byte change"
    scheme = scheme_under_test(name)
    probes = bytes(range(256)) if name == "md5-token" else PROBE_BYTES
    allowed: list[str] = []
    for unsigned in FIXED_URIS[scheme.prefix]:
        signed = scheme.sign(unsigned)
        assert scheme.verify(signed) is Reason.OK
        original = signed.encode()
        for changed in single_byte_changes(original, probes):
            assert changed != original
            count(test)
            if scheme.verify(as_header(changed)) is Reason.OK:
                allowed.append(describe(original, changed))
    report(test, allowed)
    assert allowed == [], f"{len(allowed)} single-byte changes still verify:\n" + "\n".join(
        allowed[:8]
    )


@pytest.mark.parametrize("name", SCHEMES)
def test_random_single_byte_changes_of_random_signed_uris_are_refused(name: str) -> None:
    test = f"{name}: random single-byte changes"
    scheme = scheme_under_test(name)
    allowed: list[str] = []

    @fuzz(120)
    @given(signed_uris(name), st.lists(byte_mutation, min_size=1, max_size=25))
    def run(signed: str, changes: list[tuple[str, int, int]]) -> None:
        original = signed.encode()
        for change in changes:
            changed = mutate_bytes(original, *change)
            if changed == original:  # replacing a byte by itself is not a change
                continue
            count(test)
            if scheme.verify(as_header(changed)) is Reason.OK:
                allowed.append(describe(original, changed))

    run()
    report(test, allowed)
    assert allowed == [], f"{len(allowed)} single-byte changes still verify:\n" + "\n".join(
        allowed[:8]
    )


# --- summary --------------------------------------------------------------------------------


def test_summary_inputs_fuzzed_and_wrong_allows() -> None:
    TALLY.print_summary()
    assert TALLY.fuzzed, "the summary runs last: no property ran before it"
    assert TALLY.wrong_allows == []
