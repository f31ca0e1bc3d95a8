"""``sidecar.core.encodings``: strict decoders, one text per value."""

from __future__ import annotations

import base64
import os
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sidecar.core.encodings import (
    CLOUDFRONT,
    STANDARD,
    URLSAFE,
    URLSAFE_NOPAD,
    Base64Alphabet,
    parse_epoch,
    parse_hex,
)

ALPHABETS = [STANDARD, URLSAFE, URLSAFE_NOPAD, CLOUDFRONT]


@pytest.mark.parametrize("alphabet", ALPHABETS, ids=lambda a: f"{a.char62}{a.char63}{a.pad}")
def test_round_trip_every_length(alphabet: Base64Alphabet) -> None:
    for size in range(1, 70):
        data = os.urandom(size)
        text = alphabet.encode(data)
        assert alphabet.decode(text) == data
        reference = base64.b64encode(data).decode()
        if alphabet.pad is None:
            reference = reference.rstrip("=")
        table = str.maketrans("+/=", alphabet.char62 + alphabet.char63 + (alphabet.pad or "="))
        assert text == reference.translate(table)


@pytest.mark.parametrize(
    ("alphabet", "text"),
    [
        (CLOUDFRONT, ""),
        (CLOUDFRONT, "abc"),  # not a multiple of 4
        (CLOUDFRONT, "ab+c"),  # the standard alphabet's characters are not CloudFront's
        (CLOUDFRONT, "ab/c"),
        (CLOUDFRONT, "ab=="),
        (CLOUDFRONT, "a_bc"),  # padding in the middle
        (CLOUDFRONT, "YR__"),  # unused bits set: a second spelling of "a"
        (URLSAFE, "YQ"),  # padding is required
        (URLSAFE, "Y+=="),
        (URLSAFE_NOPAD, "YQ=="),  # padding is refused
        (URLSAFE_NOPAD, "YR"),  # unused bits set
        (URLSAFE_NOPAD, "Y"),  # a length base64 never has
        (URLSAFE_NOPAD, "YQ~"),
        (STANDARD, "YQ-="),
        (STANDARD, "Y Q=="),
        (STANDARD, "\uff39\uff31=="),  # fullwidth letters
    ],
)
def test_every_other_spelling_is_refused(alphabet: Base64Alphabet, text: str) -> None:
    assert alphabet.decode(text) is None


def test_hex_all_lower_or_all_upper() -> None:
    digest = bytes(range(16))
    assert parse_hex(digest.hex(), 16) == digest
    assert parse_hex(digest.hex().upper(), 16) == digest
    assert parse_hex("0" * 32, 16) == bytes(16)


@pytest.mark.parametrize(
    "text",
    [
        "0a0B" + "0" * 28,  # mixed case
        "0" * 31,
        "0" * 33,
        "0x" + "0" * 30,
        " " + "0" * 31,
        "0" * 30 + " 0",
        "g" * 32,
        "\uff10" * 32,  # fullwidth digits
        "\u0660" * 32,  # Arabic-Indic digits
    ],
)
def test_hex_refuses(text: str) -> None:
    assert parse_hex(text, 16) is None


@given(
    text=st.text(alphabet="0123456789abcdefABCDEFg \t\n\x0b\x0c\r\u0660", min_size=30, max_size=34)
)
def test_hex_is_one_case_of_hex_digits_and_nothing_else(text: str) -> None:
    one_case = re.fullmatch(r"[0-9a-f]{32}|[0-9A-F]{32}", text)
    assert parse_hex(text, 16) == (bytes.fromhex(text) if one_case else None)


@pytest.mark.parametrize(
    ("text", "value"),
    [("0", 0), ("1", 1), ("1900000000", 1_900_000_000), ("999999999999", 999_999_999_999)],
)
def test_epoch(text: str, value: int) -> None:
    assert parse_epoch(text) == value


@pytest.mark.parametrize(
    "text", ["", "01", "+1", "-1", "1.0", "1e9", " 1", "1 ", "\u00b2", "\u0661", "1" * 13]
)
def test_epoch_refuses(text: str) -> None:
    assert parse_epoch(text) is None
