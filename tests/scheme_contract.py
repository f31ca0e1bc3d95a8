"""The contract every signing scheme keeps (STYLE: tests), inherited by each scheme's tests.

Not collected by itself (no ``test_`` prefix, no ``Test`` class name): a scheme's test
module defines ``class TestX(SchemeContract)`` and fills in the hooks below. The
contract only speaks the ``SourceVerifier`` protocol, so any scheme can reuse it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from sidecar import canonical
from sidecar.canonical import CanonicalURI
from sidecar.schemes import KeyMaterial, SourceVerifier, VerifyContext, split_url
from sidecar.verdict import Reason, Verdict

NOW = 1_900_000_000
LIFETIME = 3600


class SchemeContract:
    # --- hooks a scheme's test class provides ------------------------------------------

    #: A URL to sign: absolute or path-only, with a query of at least two parameters.
    unsigned_url: ClassVar[str] = "/books/database-internals.jpg?w=400&h=600&fit=crop"
    #: The query parameter that carries the signature.
    signature_param: ClassVar[str]
    #: Signature values that are not even well-formed for this scheme.
    bad_signature_values: ClassVar[Sequence[str]]
    #: What a signature one character short is: usually malformed (exact length first).
    truncated_signature_reason: ClassVar[Reason] = Reason.MALFORMED

    def make_verifier(self, keys: Sequence[KeyMaterial]) -> SourceVerifier:
        raise NotImplementedError

    def key_material(self, key_id: str) -> KeyMaterial:
        """A fresh key, different on every call."""
        raise NotImplementedError

    def context(self, now: float, ip: str | None = None, *, skew: int = 0) -> VerifyContext:
        return VerifyContext(now=now, clock_skew=skew, client_ip=ip)

    # --- helpers ------------------------------------------------------------------------

    def sign(self, verifier: SourceVerifier, *, expires: int = NOW + LIFETIME) -> str:
        """The request URI (origin-form) of ``unsigned_url`` signed by ``verifier``."""
        return split_url(verifier.sign(self.unsigned_url, expires=expires))[1]

    def verify(
        self, verifier: SourceVerifier, uri: str, now: float = NOW, *, skew: int = 0
    ) -> Verdict:
        parsed = _parse(uri)
        return verifier.verify(parsed, self.context(now, "203.0.113.5", skew=skew))

    def single(self, key_id: str = "k1") -> SourceVerifier:
        return self.make_verifier([self.key_material(key_id)])

    # --- the contract -------------------------------------------------------------------

    def test_round_trip(self) -> None:
        verifier = self.single("k1")
        verdict = self.verify(verifier, self.sign(verifier))
        assert verdict.reason is Reason.OK
        assert verdict.key_id == "k1"
        assert verdict.expires_at == NOW + LIFETIME

    def test_signed_url_keeps_the_unsigned_url_as_prefix(self) -> None:
        # Signing only appends: the resource the caller asked for is what gets served.
        verifier = self.single()
        unsigned = split_url(self.unsigned_url)[1]
        signed = self.sign(verifier)
        assert signed.startswith(unsigned + "&")

    def test_unsigned_is_missing(self) -> None:
        verdict = self.verify(self.single(), split_url(self.unsigned_url)[1])
        assert verdict.reason is Reason.MISSING
        assert verdict.key_id is None

    def test_tampered_path(self) -> None:
        verifier = self.single()
        signed = self.sign(verifier)
        path, _, query = signed.partition("?")
        tampered = path[:-1] + ("x" if path[-1] != "x" else "y") + "?" + query
        assert self.verify(verifier, tampered).reason is Reason.INVALID

    def test_tampered_query_value(self) -> None:
        verifier = self.single()
        signed = self.sign(verifier)
        first = _parse(signed).params[0]
        tampered = _replace_value(signed, first.name, first.value + "1")
        assert self.verify(verifier, tampered).reason is Reason.INVALID

    def test_added_param(self) -> None:
        verifier = self.single()
        signed = self.sign(verifier)
        path, _, query = signed.partition("?")
        assert self.verify(verifier, f"{path}?extra=1&{query}").reason is Reason.INVALID

    def test_removed_param(self) -> None:
        verifier = self.single()
        signed = self.sign(verifier)
        path, _, query = signed.partition("?")
        rest = query.partition("&")[2]
        assert self.verify(verifier, f"{path}?{rest}").reason is Reason.INVALID

    def test_altered_signature(self) -> None:
        verifier = self.single()
        signed = self.sign(verifier)
        value = _value(signed, self.signature_param)
        altered = ("a" if value[0] != "a" else "b") + value[1:]
        verdict = self.verify(verifier, _replace_value(signed, self.signature_param, altered))
        assert verdict.reason is Reason.INVALID

    def test_truncated_signature(self) -> None:
        verifier = self.single()
        signed = self.sign(verifier)
        value = _value(signed, self.signature_param)
        truncated = _replace_value(signed, self.signature_param, value[:-1])
        assert self.verify(verifier, truncated).reason is self.truncated_signature_reason

    def test_bad_signature_encodings_are_malformed(self) -> None:
        verifier = self.single()
        signed = self.sign(verifier)
        assert self.bad_signature_values, "a scheme must list some badly encoded signatures"
        for bad in self.bad_signature_values:
            uri = _replace_value(signed, self.signature_param, bad)
            assert self.verify(verifier, uri).reason is Reason.MALFORMED, bad

    def test_wrong_key_is_invalid(self) -> None:
        # Same key id, different key material: a forger who guessed the label.
        signer = self.single("k1")
        verifier = self.single("k1")
        assert self.verify(verifier, self.sign(signer)).reason is Reason.INVALID

    def test_rotated_keys_both_verify_and_are_named(self) -> None:
        new, old = self.key_material("new"), self.key_material("old")
        verifier = self.make_verifier([new, old])
        assert verifier.key_ids == ("new", "old")
        by_new = self.verify(verifier, self.sign(self.make_verifier([new])))
        by_old = self.verify(verifier, self.sign(self.make_verifier([old])))
        assert (by_new.reason, by_new.key_id) == (Reason.OK, "new")
        assert (by_old.reason, by_old.key_id) == (Reason.OK, "old")
        # The rotated-in key is the one that signs.
        assert self.verify(verifier, self.sign(verifier)).key_id == "new"

    def test_retired_key_no_longer_verifies(self) -> None:
        new, old = self.key_material("new"), self.key_material("old")
        signed_by_old = self.sign(self.make_verifier([old]))
        verdict = self.verify(self.make_verifier([new]), signed_by_old)
        assert verdict.reason in (Reason.INVALID, Reason.UNKNOWN_KEY)

    def test_expiry_edges(self) -> None:
        verifier = self.single()
        expires = NOW + 10
        signed = self.sign(verifier, expires=expires)
        assert self.verify(verifier, signed, expires - 1).reason is Reason.OK
        assert self.verify(verifier, signed, expires).reason is Reason.EXPIRED
        assert self.verify(verifier, signed, expires + 86400).reason is Reason.EXPIRED

    def test_expiry_with_clock_skew(self) -> None:
        verifier = self.single()
        expires = NOW + 10
        signed = self.sign(verifier, expires=expires)
        assert self.verify(verifier, signed, expires + 29, skew=30).reason is Reason.OK
        assert self.verify(verifier, signed, expires + 30, skew=30).reason is Reason.EXPIRED

    def test_expired_and_tampered_is_invalid_not_expired(self) -> None:
        # A forgery must never learn that its expiry is what failed.
        verifier = self.single()
        signed = self.sign(verifier, expires=NOW - 100)
        first = _parse(signed).params[0]
        tampered = _replace_value(signed, first.name, first.value + "1")
        assert self.verify(verifier, tampered).reason is Reason.INVALID


def _parse(uri: str) -> CanonicalURI:
    parsed = canonical.parse(uri)
    assert parsed is not None, f"test URI is not canonical: {uri!r}"
    return parsed


def _value(uri: str, name: str) -> str:
    param = _parse(uri).get(name)
    assert param is not None, f"{name!r} not in {uri!r}"
    return param.value


def _replace_value(uri: str, name: str, value: str) -> str:
    """``uri`` with the raw value of its (first) ``name`` parameter replaced."""
    param = _parse(uri).get(name)
    assert param is not None, f"{name!r} not in {uri!r}"
    start = param.start + len(param.raw_name) + 1
    return uri[:start] + value + uri[start + len(param.value) :]
