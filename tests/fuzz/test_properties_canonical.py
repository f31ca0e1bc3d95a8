"""Property-based fuzzing of the canonical gate (``canonical.parse``): random and mutated
request URIs never raise, and every URI it accepts is checked independently of its code.
"""

from __future__ import annotations

import re
from urllib.parse import quote

from hypothesis import given
from hypothesis import strategies as st

from sidecar.core import canonical
from tests.support.properties import (
    Tally,
    as_header,
    fuzz,
    mutate_text,
    own_query,
    path_under,
    text_mutation,
    with_query,
)

TALLY = Tally()
count, report = TALLY.count, TALLY.report


# --- 1. canonical.parse --------------------------------------------------------------------

_ESCAPE = re.compile(r"%([0-9A-Fa-f]{2})")


_ESCAPE_BYTES = re.compile(rb"%([0-9A-Fa-f]{2})")


_FORBIDDEN_RAW = set(range(0x21)) | set(range(0x7F, 0xA0)) | {ord("#"), ord("\\")}


_FORBIDDEN_DECODED = set(range(0x20)) | {0x7F, ord("/"), ord("\\"), ord(".")}


def check_accepted(raw: str, uri: canonical.CanonicalURI) -> None:
    """What every accepted URI must be, checked independently of the parser's own code."""
    assert uri.raw == raw and raw.startswith("/") and len(raw) <= canonical.MAX_URI_LENGTH
    raw.encode("utf-8")  # valid UTF-8: no lone surrogate from an undecodable byte
    assert not any(ord(c) in _FORBIDDEN_RAW for c in raw), raw
    assert "%" not in _ESCAPE.sub("", raw), f"stray %: {raw!r}"
    raw_path = raw.partition("?")[0]
    assert uri.raw_path == raw_path
    assert ";" not in raw_path and "//" not in raw_path
    assert all(seg not in (".", "..") for seg in raw_path.split("/")), raw
    escapes = [int(hexa, 16) for hexa in _ESCAPE.findall(raw_path)]
    assert not _FORBIDDEN_DECODED.intersection(escapes), raw
    decoded = _ESCAPE_BYTES.sub(lambda m: bytes([int(m.group(1), 16)]), raw_path.encode())
    path = uri.path
    assert decoded.decode("utf-8") == path  # the escapes decode to valid UTF-8: the path
    assert path.count("/") == raw_path.count("/")
    assert "//" not in path and all(seg not in (".", "..") for seg in path.split("/"))
    assert not any(ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F or c == "\\" for c in path), path
    assert canonical.parse(raw) == uri  # stable
    respelled = canonical.parse(quote(path, safe="/"))
    assert respelled is not None and respelled.path == path, raw
    query = raw.partition("?")[2] if "?" in raw else None
    assert uri.query == query
    for param in uri.params:
        assert raw[param.start - 1] in "?&" and raw.startswith(param.raw_name, param.start)


def check_parse(test: str, raw: str) -> None:
    count(test)
    uri = canonical.parse(raw)
    if uri is not None:
        check_accepted(raw, uri)


@fuzz(1500)
@given(st.one_of(st.text(max_size=200), st.text(max_size=200).map("/".__add__)))
def test_parse_random_text(raw: str) -> None:
    check_parse("parse: random text", raw)


@fuzz(1500)
@given(st.binary(max_size=200).map(lambda b: as_header(b"/" + b)))
def test_parse_random_header_bytes(raw: str) -> None:
    check_parse("parse: random bytes (surrogateescape)", raw)


@fuzz(700)
@given(
    path_under("/").flatmap(lambda p: own_query(frozenset()).map(lambda q: with_query(p, q))),
    st.lists(text_mutation, max_size=4),
)
def test_parse_mutated_valid_uris(valid: str, changes: list[tuple[str, int, str]]) -> None:
    test = "parse: mutated valid URIs"
    count(test)
    accepted = canonical.parse(valid)
    assert accepted is not None, f"a canonical URI was refused: {valid!r}"
    check_accepted(valid, accepted)
    mutated = valid
    for change in changes:
        mutated = mutate_text(mutated, *change)
    check_parse(test, mutated)


def test_parse_refuses_every_forbidden_spelling() -> None:
    """A deterministic sweep: each forbidden form spliced into each segment is refused."""
    test = "parse: forbidden spellings"
    base = "/books/a/b.jpg?w=1"
    # fmt: off
    forbidden = [
        *";\\# %\x00\x1f\x7f\x85\udcff",
        "/./", "/../", "//", "%2F", "%2f", "%5C", "%2E", "%00", "%1F", "%7F", "%4g", "%zz",
        "%C3", "%C0%AF", "%ED%A0%80", "%C2%85",
    ]
    # fmt: on
    accepted = []
    for token in forbidden:
        for position in range(1, base.index("?") + 1):
            raw = base[:position] + token + base[position:]
            count(test)
            if canonical.parse(raw) is not None:
                accepted.append(raw)
    report(test, [])
    assert accepted == [], accepted[:10]


# --- summary --------------------------------------------------------------------------------


def test_summary_inputs_fuzzed_and_wrong_allows() -> None:
    TALLY.print_summary()
    assert TALLY.fuzzed, "the summary runs last: no property ran before it"
    assert TALLY.wrong_allows == []
