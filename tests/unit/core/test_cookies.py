"""``sidecar.core.cookies``: grant cookies read strictly, other cookies left alone."""

from __future__ import annotations

import pytest

from sidecar.core.cookies import MAX_COOKIE_HEADER, grant_cookies, set_cookie
from sidecar.core.verdict import Reason
from sidecar.errors import SchemeError

NAMES = {"CloudFront-Policy", "CloudFront-Signature"}


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, {}),
        ("", {}),
        ("CloudFront-Policy=abc", {"CloudFront-Policy": "abc"}),
        ("a=1; CloudFront-Policy=abc;CloudFront-Signature=x~y_", {
            "CloudFront-Policy": "abc", "CloudFront-Signature": "x~y_"}),
        ('session="quoted, with comma"; CloudFront-Policy=abc', {"CloudFront-Policy": "abc"}),
        ("other=1; other=2; CloudFront-Policy=abc", {"CloudFront-Policy": "abc"}),
        ("cloudfront-policy=abc", {}),  # names are case-sensitive
        ("CloudFront-Policy=", {"CloudFront-Policy": ""}),
    ],
)  # fmt: skip
def test_reads_only_the_names_asked_for(header: str | None, expected: dict[str, str]) -> None:
    assert grant_cookies(header, NAMES) == expected


@pytest.mark.parametrize(
    ("header", "reason"),
    [
        ("CloudFront-Policy=a; CloudFront-Policy=b", Reason.NON_CANONICAL),
        ("CloudFront-Policy=a; CloudFront-Policy=a", Reason.NON_CANONICAL),
        ('CloudFront-Policy="abc"', Reason.MALFORMED),
        ("CloudFront-Policy=a b", Reason.MALFORMED),
        ("CloudFront-Policy=a,b", Reason.MALFORMED),
        ("CloudFront-Policy=a\\b", Reason.MALFORMED),
        ("CloudFront-Policy=caf\u00e9", Reason.MALFORMED),
        ("CloudFront-Policy", Reason.MALFORMED),
        ("x=" + "a" * MAX_COOKIE_HEADER + "; CloudFront-Policy=abc", Reason.NON_CANONICAL),
    ],
)
def test_one_spelling_for_the_names_asked_for(header: str, reason: Reason) -> None:
    assert grant_cookies(header, NAMES) is reason


def test_set_cookie_scopes_the_grant() -> None:
    value = set_cookie("CloudFront-Policy", "abc", path="/books/", expires=1_900_000_000)
    assert value == (
        "CloudFront-Policy=abc; Path=/books/; Expires=Sun, 17 Mar 2030 17:46:40 GMT; "
        "Secure; HttpOnly; SameSite=Lax"
    )


@pytest.mark.parametrize(
    ("value", "path", "problem"),
    [
        ("b;c", "/", "cannot"),
        ("", "/", "cannot"),
        ('"q"', "/", "cannot"),
        ("b", "/a;b", "Path"),
        ("b", "/a b", "Path"),
        ("b", "a/", "Path"),
    ],
)
def test_set_cookie_refuses_what_a_cookie_cannot_carry(value: str, path: str, problem: str) -> None:
    with pytest.raises(SchemeError, match=problem):
        set_cookie("a", value, path=path, expires=1)
