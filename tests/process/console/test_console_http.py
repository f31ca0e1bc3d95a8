"""The console over plain HTTP: the security headers of every answer, forms refused
without their CSRF token or from another origin, nothing shown without a session, never
on the verify listener, and sessions valid across ``workers = 2``."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.console import (
    SECOND_ADMIN_KEY,
    SOURCE_NAMES,
    Console,
    console_stack,
    count_events,
    csrf_of,
    fetch_page,
    session_cookie,
    wait_for,
)
from tests.support.requests import request, verify
from tests.support.tokens import BOOKS_TOKEN, md5_signed

CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)


@pytest.fixture(scope="module")
def console(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Console]:
    with console_stack(tmp_path_factory.mktemp("console")) as running:
        yield running


@pytest.mark.parametrize(
    ("path", "logged_in"),
    [("/login", False), ("/sources", True), ("/live", True), ("/live.json", True),
     ("/static/console.js", False), ("/no-such-page", True), ("/sources", False),
     ("/live/charts", True), ("/live/charts", False)],
)  # fmt: skip
def test_every_answer_carries_the_security_headers(
    console: Console, path: str, logged_in: bool
) -> None:
    cookie = session_cookie(console) if logged_in else None
    page = fetch_page(console, "GET", path, cookie=cookie)
    assert page.headers["content-security-policy"] == CSP
    assert page.headers["x-content-type-options"] == "nosniff"
    assert page.headers["referrer-policy"] == "no-referrer"
    assert page.headers["cache-control"] == "no-store"
    assert page.headers["x-frame-options"] == "DENY"
    assert "server" not in page.headers


def test_the_session_cookie_is_http_only_strict_and_short_lived(console: Console) -> None:
    page = fetch_page(console, "POST", "/login", form={"api_key": SECOND_ADMIN_KEY})
    assert page.status == 303 and page.headers["location"] == "/sources"
    attributes = [part.strip().lower() for part in page.headers["set-cookie"].split(";")]
    assert {"httponly", "samesite=strict", "path=/", "max-age=1800"} <= set(attributes)


def test_without_a_session_nothing_is_shown(console: Console) -> None:
    for path in ("/sources", "/live", "/live/charts", "/live/charts?source=books", "/report",
                 "/playground"):  # fmt: skip
        page = fetch_page(console, "GET", path)
        assert (page.status, page.headers["location"]) == (303, "/login")
    answer = fetch_page(console, "GET", "/live.json")
    assert answer.status == 401 and json.loads(answer.body) == {"error": "log in"}
    forged = fetch_page(
        console, "GET", "/sources", cookie="9999999999.0." + "A" * 22 + "." + "B" * 43
    )
    assert forged.status == 303
    wrong = fetch_page(console, "POST", "/login", form={"api_key": "guess"})
    assert wrong.status == 401 and "Wrong key." in wrong.body
    for page in (answer, forged, wrong):
        assert not any(name in page.body for name in SOURCE_NAMES)


def test_a_post_without_its_csrf_token_is_refused(console: Console) -> None:
    cookie = session_cookie(console)
    reveals = count_events(console.stack, "console_reveal")
    form = {"source": "books", "key": "2026-11"}
    other_session = csrf_of(fetch_page(console, "GET", "/sources", cookie=session_cookie(console)))
    for token in (None, "", "x" * 43, other_session):
        sent = form if token is None else {**form, "csrf": token}
        page = fetch_page(console, "POST", "/reveal", cookie=cookie, form=sent)
        assert page.status == 403 and BOOKS_TOKEN not in page.body
    assert count_events(console.stack, "console_reveal") == reveals  # nothing was revealed
    token = csrf_of(fetch_page(console, "GET", "/sources", cookie=cookie))
    page = fetch_page(console, "POST", "/reveal", cookie=cookie, form={**form, "csrf": token})
    assert page.status == 200 and BOOKS_TOKEN in page.body


@pytest.mark.parametrize(
    "headers",
    [{"Origin": "http://evil.example"}, {"Sec-Fetch-Site": "cross-site"},
     {"Origin": "null"}, {"Sec-Fetch-Site": "same-site"}],
)  # fmt: skip
def test_a_post_from_another_origin_is_refused_even_with_the_token(
    console: Console, headers: dict[str, str]
) -> None:
    cookie = session_cookie(console)
    token = csrf_of(fetch_page(console, "GET", "/sources", cookie=cookie))
    form = {"source": "books", "key": "2026-11", "csrf": token}
    page = fetch_page(console, "POST", "/reveal", cookie=cookie, form=form, headers=headers)
    assert page.status == 403 and BOOKS_TOKEN not in page.body
    refused_login = fetch_page(console, "POST", "/login", form={"api_key": "x"}, headers=headers)
    assert refused_login.status == 403


def test_the_console_is_not_on_the_verify_listener(console: Console) -> None:
    for path in ("/login", "/sources", "/live.json", "/live/charts"):
        assert request(console.stack.sidecar_port, path, host="127.0.0.1").status == 404


def test_workers_share_sessions_and_show_the_same_totals(tmp_path: Path) -> None:
    with console_stack(tmp_path / "workers", workers=2) as console:
        cookie = session_cookie(console)
        for width in range(5):
            assert verify(console.stack, md5_signed(f"/books/x.png?w={width}")).status == 200
        # Fresh connections: the kernel spreads them over both workers (SO_REUSEPORT).
        answers = [fetch_page(console, "GET", "/live.json", cookie=cookie) for _ in range(24)]
        assert all(answer.status == 200 for answer in answers)
        bodies = [json.loads(answer.body) for answer in answers]
        assert len({body["pid"] for body in bodies}) == 2  # both workers answered
        assert {body["sources"]["books"]["total"] for body in bodies} == {5.0}
        for _ in range(6):  # pages, and their forms' CSRF tokens, from any worker
            page = fetch_page(console, "GET", "/sources", cookie=cookie)
            assert page.status == 200 and all(name in page.body for name in SOURCE_NAMES)
            form = {"source": "books", "key": "2026-11", "csrf": csrf_of(page)}
            reveal = fetch_page(console, "POST", "/reveal", cookie=cookie, form=form)
            assert reveal.status == 200 and BOOKS_TOKEN in reveal.body

        def charts_agree() -> bool:
            """Every worker samples the summed counts: any one draws the 5 decisions."""
            pages = [fetch_page(console, "GET", "/live/charts", cookie=cookie) for _ in range(8)]
            return all("5 decisions, 0 rejected" in page.body for page in pages)

        wait_for(charts_agree, "the charts of both workers", timeout=20)
