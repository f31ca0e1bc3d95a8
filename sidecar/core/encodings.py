"""Strict decoders shared by every scheme: one text per value, nothing tolerated.

A signed URL has exactly one spelling. A decoder that forgave padding, unused trailing
bits, mixed hex case or leading zeros would give each signed URL a second spelling: a
second cache key and a second URL to revoke. Each function returns None for anything but
the one canonical text.
"""

from __future__ import annotations

import binascii
import re
from typing import Final, NamedTuple

# Unix seconds without leading zeros or sign: up to 12 digits covers the year 33658.
_EPOCH: Final = re.compile(r"0|[1-9][0-9]{0,11}")


def parse_epoch(text: str) -> int | None:
    """Unix seconds in their one spelling (ASCII digits, no leading zero), or None."""
    return int(text) if _EPOCH.fullmatch(text) else None


def parse_hex(text: str, size: int) -> bytes | None:
    """Exactly ``size`` bytes of hex, all lowercase or all uppercase (signers in Java, .NET
    and Go often print uppercase); mixed case is not one of the two spellings."""
    if len(text) != 2 * size:
        return None
    try:
        data = bytes.fromhex(text)  # a third of a regex match's cost: this is the hot path
    except ValueError:
        return None
    # fromhex skips whitespace between pairs: a text of twice size characters that decodes
    # to size bytes holds hex digits only. Then one case (or digits alone).
    if len(data) != size or not (text.islower() or text.isupper() or text.isdigit()):
        return None
    return data


class Base64Alphabet(NamedTuple):
    """The two non-alphanumeric characters of an alphabet, and its padding (None: unpadded)."""

    char62: str
    char63: str
    pad: str | None

    # binascii itself, not base64's wrappers: those are Python code (and b64decode's
    # validate a regex), about a microsecond a call, and a JWT decodes three texts.
    def encode(self, data: bytes) -> str:
        text = binascii.b2a_base64(data, newline=False)
        if self.pad is None:
            text = text.rstrip(b"=")
        return text.translate(_from_standard(self)).decode("ascii")

    def decode(self, text: str) -> bytes | None:
        """Strict decoding: exact padding and zero unused bits, or None."""
        if not text or not text.isascii():
            return None
        raw = text.encode("ascii")
        standard = raw.translate(_to_standard(self))
        if self.pad is None:
            if b"=" in standard or len(standard) % 4 == 1:
                return None
            standard += b"=" * (-len(standard) % 4)
        try:
            data = binascii.a2b_base64(standard, strict_mode=True)
        except binascii.Error:
            return None
        # Re-encoding must give the text back: this refuses non-zero unused bits, and any
        # character that translated into the standard alphabet from outside this one.
        return data if self.encode(data) == text else None


STANDARD = Base64Alphabet("+", "/", "=")
URLSAFE = Base64Alphabet("-", "_", "=")
URLSAFE_NOPAD = Base64Alphabet("-", "_", None)
# AWS CloudFront: '+' → '-', '=' → '_', '/' → '~'.
CLOUDFRONT = Base64Alphabet("-", "~", "_")

# Byte tables (bytes.translate runs in C at about a nanosecond a byte; str.translate with a
# dict mapping costs microseconds for a 344-character RSA signature).
_TABLES: Final[dict[Base64Alphabet, tuple[bytes, bytes]]] = {}


def _tables(alphabet: Base64Alphabet) -> tuple[bytes, bytes]:
    tables = _TABLES.get(alphabet)
    if tables is None:
        ours = (alphabet.char62 + alphabet.char63 + (alphabet.pad or "")).encode("ascii")
        theirs = b"+/" + (b"=" if alphabet.pad else b"")
        to_standard = bytearray(range(256))
        # Characters of the standard alphabet that this one does not use must not
        # translate into it unchanged: map them to '!' (never valid base64).
        for char in b"+/=":
            if char not in ours:
                to_standard[char] = ord("!")
        for mine, standard in zip(ours, theirs, strict=True):
            to_standard[mine] = standard
        from_standard = bytearray(range(256))
        for mine, standard in zip(ours, theirs, strict=True):
            from_standard[standard] = mine
        tables = _TABLES[alphabet] = (bytes(to_standard), bytes(from_standard))
    return tables


def _to_standard(alphabet: Base64Alphabet) -> bytes:
    return _tables(alphabet)[0]


def _from_standard(alphabet: Base64Alphabet) -> bytes:
    return _tables(alphabet)[1]
