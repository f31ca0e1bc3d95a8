"""``sidecar.core.cookies``: grant cookies read strictly, other cookies left alone."""

from __future__ import annotations

import pytest

from sidecar.core.cookies import MAX_COOKIE_HEADER, grant_cookies, set_cookie
from sidecar.core.verdict import Reason

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
    value = set_cookie("CloudFront-Policy", "abc", path="/books/", max_age=600)
    assert value == (
        "CloudFront-Policy=abc; Path=/books/; Max-Age=600; Secure; HttpOnly; SameSite=Lax"
    )
    assert "Max-Age=0;" in set_cookie("a", "b", path="/", max_age=-5)
    assert "; Domain=cdn.example.com;" in set_cookie(
        "a", "b", path="/", max_age=1, domain="cdn.example.com"
    )
    with pytest.raises(ValueError, match="cannot carry"):
        set_cookie("a", "b;c", path="/", max_age=1)
