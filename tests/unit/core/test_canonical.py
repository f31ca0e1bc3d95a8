"""The canonical-URI gate: one raw spelling, one file, or no answer at all."""

from __future__ import annotations

import pytest

from sidecar.core.canonical import MAX_URI_LENGTH, decode_path, is_canonical_path, parse

# --- accepted ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "path"),
    [
        pytest.param("/books/a.jpg", "/books/a.jpg", id="plain"),
        pytest.param("/", "/", id="root"),
        pytest.param("/books/my%20book.jpg", "/books/my book.jpg", id="encoded-space"),
        pytest.param("/books/caf%C3%A9.jpg", "/books/café.jpg", id="encoded-utf8-upper"),
        pytest.param("/books/caf%c3%a9.jpg", "/books/café.jpg", id="encoded-utf8-lower"),
        pytest.param("/books/café.jpg", "/books/café.jpg", id="raw-utf8"),
        pytest.param("/books/100%25.jpg", "/books/100%.jpg", id="encoded-percent"),
        # A path's "+" is a literal plus (RFC 3986); only form-encoded queries mean space.
        pytest.param("/books/a+b.jpg", "/books/a+b.jpg", id="plus-stays-plus"),
        pytest.param("/b%6Foks/a.jpg", "/books/a.jpg", id="encoded-unreserved"),
        pytest.param("/books/.hidden.jpg", "/books/.hidden.jpg", id="leading-dot-name"),
        pytest.param("/books/a..b.jpg", "/books/a..b.jpg", id="dots-inside-name"),
        pytest.param("/books/", "/books/", id="trailing-slash"),
    ],
)
def test_parse_accepts_and_decodes_path(raw: str, path: str) -> None:
    uri = parse(raw)
    assert uri is not None
    assert uri.raw == raw
    assert uri.path == path
    assert uri.query is None
    assert uri.params == ()


def test_parse_keeps_raw_query_and_splits_it() -> None:
    raw = "/books/a.jpg?w=400&h=600&fit=crop"
    uri = parse(raw)
    assert uri is not None
    assert uri.raw_path == "/books/a.jpg"
    assert uri.query == "w=400&h=600&fit=crop"
    assert [(p.name, p.value) for p in uri.params] == [("w", "400"), ("h", "600"), ("fit", "crop")]


def test_parse_accepts_empty_values() -> None:
    uri = parse("/books/a.jpg?a=&b=")
    assert uri is not None
    assert [(p.name, p.raw_name, p.value) for p in uri.params] == [("a", "a", ""), ("b", "b", "")]


def test_parse_accepts_bare_question_mark() -> None:
    # "?" with nothing after it is an empty query, not an absent one: the raw bytes differ.
    uri = parse("/books/a.jpg?")
    assert uri is not None
    assert uri.query == ""
    assert uri.path == "/books/a.jpg"
    assert all(p.name == "" and p.value == "" for p in uri.params)


def test_parse_accepts_encoded_slash_in_query() -> None:
    # Only the path names a file; an encoded "/" in a query value changes no file.
    uri = parse("/books/a.jpg?next=%2Fother%2Fpage")
    assert uri is not None
    assert uri.params[0].value == "%2Fother%2Fpage"


def test_query_param_offsets_point_into_the_raw_uri() -> None:
    raw = "/books/a.jpg?w=400&h=&fit=crop&s=abc"
    uri = parse(raw)
    assert uri is not None
    for param in uri.params:
        # The pair starts at `start` and its separator sits just before it.
        assert raw[param.start :].startswith(f"{param.raw_name}={param.value}")
        assert raw[param.start - 1] in "?&"
    assert [p.start for p in uri.params] == [13, 19, 22, 31]
    last = uri.params[-1]
    assert raw[: last.start - 1] == "/books/a.jpg?w=400&h=&fit=crop"


def test_query_param_names_are_decoded_raw_names_kept() -> None:
    uri = parse("/books/a.jpg?%73=1&a+b=2&%65xpires=3&plain=4")
    assert uri is not None
    assert [p.name for p in uri.params] == ["s", "a b", "expires", "plain"]
    assert [p.raw_name for p in uri.params] == ["%73", "a+b", "%65xpires", "plain"]
    # Values stay raw: the signature covers the wire bytes.
    assert [p.value for p in uri.params] == ["1", "2", "3", "4"]
    assert uri.count("s") == 1
    assert uri.get("expires") is uri.params[2]
    assert uri.get("absent") is None


def test_query_count_sees_every_spelling_of_a_name() -> None:
    uri = parse("/a.jpg?s=1&%73=2&s=3")
    assert uri is not None
    assert uri.count("s") == 3


def test_uri_at_length_limit_is_accepted() -> None:
    raw = "/" + "a" * (MAX_URI_LENGTH - 1)
    assert len(raw) == MAX_URI_LENGTH
    assert parse(raw) is not None


# --- refused ----------------------------------------------------------------------------

REFUSED = [
    pytest.param("", id="empty"),
    pytest.param("books/a.jpg", id="relative"),
    pytest.param("http://x/y", id="absolute-form"),
    pytest.param("*", id="asterisk-form"),
    pytest.param("/" + "a" * MAX_URI_LENGTH, id="over-long"),
    pytest.param("/books/../public/a.jpg", id="dotdot-segment"),
    pytest.param("/books/./a.jpg", id="dot-segment"),
    pytest.param("/books/a.jpg/.", id="trailing-dot"),
    pytest.param("/books/a.jpg/..", id="trailing-dotdot"),
    pytest.param("/..", id="root-dotdot"),
    pytest.param("/books//a.jpg", id="double-slash"),
    pytest.param("//books/a.jpg", id="leading-double-slash"),
    pytest.param("/books%2Fa.jpg", id="encoded-slash"),
    pytest.param("/books%2fa.jpg", id="encoded-slash-lower"),
    pytest.param("/books/a%5Cb.jpg", id="encoded-backslash"),
    pytest.param("/books/a%5cb.jpg", id="encoded-backslash-lower"),
    pytest.param("/books/%2E%2E/a.jpg", id="encoded-dotdot"),
    pytest.param("/books/a%2Ejpg", id="encoded-dot"),
    pytest.param("/books/a%2ejpg", id="encoded-dot-lower"),
    pytest.param("/books\\a.jpg", id="backslash"),
    pytest.param("/books/a.jpg;jsessionid=1", id="semicolon"),
    pytest.param("/books/a.jpg#frag", id="fragment"),
    pytest.param("/books/a.jpg?w=1#frag", id="fragment-in-query"),
    pytest.param("/books/a\x00.jpg", id="raw-nul"),
    pytest.param("/books/a\n.jpg", id="raw-newline"),
    pytest.param("/books/a\t.jpg", id="raw-tab"),
    pytest.param("/books/a\x7f.jpg", id="raw-del"),
    pytest.param("/books/a\x85.jpg", id="raw-c1"),
    pytest.param("/books/a b.jpg", id="raw-space"),
    pytest.param("/books/a.jpg?w=1\r\nX: y", id="raw-crlf-in-query"),
    pytest.param("/books/a%00.jpg", id="encoded-nul"),
    pytest.param("/books/a%0A.jpg", id="encoded-lf"),
    pytest.param("/books/a%0d.jpg", id="encoded-cr"),
    pytest.param("/books/a%1F.jpg", id="encoded-unit-sep"),
    pytest.param("/books/a%7F.jpg", id="encoded-del"),
    pytest.param("/books/a%C2%85.jpg", id="encoded-c1-nel"),
    pytest.param("/books/a%C2%9F.jpg", id="encoded-c1-apc"),
    pytest.param("/books/a%.jpg", id="bare-percent"),
    pytest.param("/books/a.jpg%", id="trailing-percent"),
    pytest.param("/books/a%G1.jpg", id="percent-non-hex"),
    pytest.param("/books/a%4", id="percent-one-digit"),
    pytest.param("/books/a.jpg?w=100%", id="bare-percent-in-query"),
    pytest.param("/books/a%C3%28.jpg", id="encoded-invalid-utf8"),
    pytest.param("/books/a%FF.jpg", id="encoded-ff"),
    pytest.param("/books/a%C3.jpg", id="encoded-truncated-utf8"),
    pytest.param("/books/a%C0%AF.jpg", id="encoded-overlong-slash"),
    pytest.param("/books/a\udcff.jpg", id="surrogateescape-byte"),
    pytest.param("/books/a.jpg?q=\udcff", id="surrogateescape-in-query"),
]


@pytest.mark.parametrize("raw", REFUSED)
def test_parse_refuses(raw: str) -> None:
    assert parse(raw) is None


def test_uri_one_over_length_limit_is_refused() -> None:
    raw = "/" + "a" * MAX_URI_LENGTH
    assert len(raw) == MAX_URI_LENGTH + 1
    assert parse(raw) is None


# --- decode_path ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw_path", "decoded"),
    [
        ("/books/a.jpg", "/books/a.jpg"),
        ("/books/my%20book.jpg", "/books/my book.jpg"),
        ("/books/caf%C3%A9.jpg", "/books/café.jpg"),
        ("/books/100%25.jpg", "/books/100%.jpg"),
        ("/books/%3F.jpg", "/books/?.jpg"),
        ("/books/%2B.jpg", "/books/+.jpg"),
    ],
)
def test_decode_path_decodes(raw_path: str, decoded: str) -> None:
    assert decode_path(raw_path) == decoded


@pytest.mark.parametrize(
    "raw_path",
    [
        "/a/../b",
        "/a/.",
        "/a//b",
        "/a;b",
        "/a%2Fb",
        "/a%5Cb",
        "/a%2Eb",
        "/a%00b",
        "/a%1Fb",
        "/a%7Fb",
        "/a%C2%85b",
        "/a%C3%28b",
        "/a%FFb",
    ],
)
def test_decode_path_refuses(raw_path: str) -> None:
    assert decode_path(raw_path) is None


def test_decoded_percent_is_not_decoded_twice() -> None:
    # "%252F" is a literal "%2F" in the file name, never a second-round "/".
    assert decode_path("/books/a%252Fb.jpg") == "/books/a%2Fb.jpg"


# --- is_canonical_path (config prefixes) ------------------------------------------------


@pytest.mark.parametrize("path", ["/", "/books/", "/books", "/a/b-c_d.e/", "/café/"])
def test_is_canonical_path_accepts(path: str) -> None:
    assert is_canonical_path(path)


@pytest.mark.parametrize(
    "path",
    [
        "",
        "books/",
        "/books//",
        "/books/../x/",
        "/books/./",
        "/books/..",
        "/books;x/",
        "/books?x",
        "/books%2F/",
        "/books#/",
        "/books\\x/",
        "/books\x00/",
        "/bo oks/",
    ],
)
def test_is_canonical_path_refuses(path: str) -> None:
    assert not is_canonical_path(path)
