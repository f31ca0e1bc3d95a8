"""The digests the schemes compute: the same bytes as hashlib and hmac, and the RFCs'."""

from __future__ import annotations

import hashlib
import hmac

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sidecar.core import digests

ALGORITHMS = ["md5", "sha1", "sha256", "sha384", "sha512"]

# RFC 4231 §4.2, §4.3 and §4.7 (a key longer than the block is hashed first), SHA-256.
RFC4231 = [
    (b"\x0b" * 20, b"Hi There",
     "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"),
    (b"Jefe", b"what do ya want for nothing?",
     "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"),
    (b"\xaa" * 131,
     b"This is a test using a larger than block-size key and a larger than block-size data. "
     b"The key needs to be hashed before being used by the HMAC algorithm.",
     "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2"),
]  # fmt: skip
# RFC 2202 §3, test cases 1 and 6 (a key longer than the block), HMAC-SHA1.
RFC2202 = [
    (b"\x0b" * 20, b"Hi There", "b617318655057264e28bc0b6fb378c8ef146be00"),
    (b"\xaa" * 80, b"Test Using Larger Than Block-Size Key - Hash Key First",
     "aa4ae5e15272d00e95705637ce8a3b55ed402112"),
]  # fmt: skip


@pytest.mark.parametrize(("key", "message", "expected"), RFC4231)
def test_hmac_sha256_matches_rfc4231(key: bytes, message: bytes, expected: str) -> None:
    assert digests.hmac_digest(key, message, "sha256").hex() == expected


@pytest.mark.parametrize(("key", "message", "expected"), RFC2202)
def test_hmac_sha1_matches_rfc2202(key: bytes, message: bytes, expected: str) -> None:
    assert digests.hmac_digest(key, message, "sha1").hex() == expected


@pytest.mark.parametrize("algorithm", ALGORITHMS)
@given(key=st.binary(max_size=300), message=st.binary(max_size=300))
def test_hmac_matches_the_standard_library(algorithm: str, key: bytes, message: bytes) -> None:
    assert digests.hmac_digest(key, message, algorithm) == hmac.digest(key, message, algorithm)


def test_algorithm_names_are_read_in_either_case() -> None:
    assert digests.hmac_digest(b"k", b"m", "SHA384") == hmac.digest(b"k", b"m", "sha384")


def test_a_kept_key_gives_the_same_digest_again_and_keys_do_not_mix() -> None:
    first = digests.hmac_digest(b"key-one", b"message", "sha256")
    other = digests.hmac_digest(b"key-two", b"message", "sha256")
    assert digests.hmac_digest(b"key-one", b"message", "sha256") == first != other
    # A key and the same key padded with zeros by hand give the same HMAC (RFC 2104 pads
    # with zeros), and neither is confused with a key hashed to another algorithm.
    assert digests.hmac_digest(b"key-one\0", b"message", "sha256") == first
    assert digests.hmac_digest(b"key-one", b"message", "sha1") != first[:20]


def test_the_kept_pads_stay_bounded() -> None:
    for index in range(digests._MAX_PADS + 10):
        digests.hmac_digest(index.to_bytes(4, "big"), b"m", "sha256")
    assert len(digests._PADS) <= digests._MAX_PADS
    assert digests.hmac_digest(b"\0\0\0\1", b"m", "sha256") == hmac.digest(
        b"\0\0\0\1", b"m", "sha256"
    )


@given(data=st.binary(max_size=300))
def test_md5_and_sha256_match_hashlib(data: bytes) -> None:
    assert digests.md5(data) == hashlib.md5(data, usedforsecurity=False).digest()
    assert digests.sha256(data) == hashlib.sha256(data).digest()


def test_cpythons_own_implementations_are_the_ones_used() -> None:
    # The speed this module is for: hashlib's objects are OpenSSL's (_hashlib.HASH).
    assert type(digests._MD5(b"")).__module__ == "_md5"
    assert type(digests._SHA256(b"")).__module__ == "_sha256"
    assert type(hashlib.md5()).__module__ == "_hashlib"
