"""Who the console answers, against the real sidecar process: only its own host names (a
DNS-rebinding page is refused on every path, static files and the login included), a
bounded number of wrong keys per client address, and a logout that ends the session in
every worker, so a copied cookie dies with it."""

from __future__ import annotations

import http.client
from collections.abc import Iterator
from pathlib import Path

import pytest

from sidecar.runtime.console.login import LOGIN_THROTTLE
from tests.support.console import (
    ADMIN_KEY,
    DEADLINE,
    PROXIED_NAME,
    SOURCE_NAMES,
    Console,
    console_stack,
    count_events,
    csrf_of,
    fetch_page,
    log_events,
    log_lines,
    session_cookie,
)
from tests.support.raw_http import exchange

REFUSED_HOST = "This console does not answer for that host name.\n"
ATTACKER, NEIGHBOUR = "127.0.0.2", "127.0.0.3"  # loopback clients of their own


@pytest.fixture(scope="module")
def console(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Console]:
    with console_stack(tmp_path_factory.mktemp("console-access")) as running:
        yield running


# --- host names ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "logged_in"),
    [("GET", "/login", False), ("POST", "/login", False), ("GET", "/static/console.css", False),
     ("GET", "/static/console.js", False), ("GET", "/sources", True), ("GET", "/live.json", True),
     ("GET", "/", True), ("GET", "/no-such-page", False), ("POST", "/logout", True)],
)  # fmt: skip
@pytest.mark.parametrize(
    "host", ["attacker.example", "attacker.example:{port}", "127.0.0.1.attacker.example:{port}"]
)
def test_a_foreign_host_name_is_refused_on_every_path(
    console: Console, method: str, path: str, logged_in: bool, host: str
) -> None:
    # A DNS-rebinding page (attacker.example, resolved to 127.0.0.1) reached the console.
    cookie = session_cookie(console) if logged_in else None
    logins = count_events(console.stack, "console_login")
    form = {"api_key": ADMIN_KEY} if method == "POST" else None
    headers = {"Host": host.format(port=console.port)}
    page = fetch_page(console, method, path, cookie=cookie, form=form, headers=headers)
    assert (page.status, page.body) == (421, REFUSED_HOST)
    assert page.headers["content-type"].startswith("text/plain")
    assert "set-cookie" not in page.headers and "location" not in page.headers
    assert count_events(console.stack, "console_login") == logins  # no login was tried


@pytest.mark.parametrize("host", [PROXIED_NAME, f"{PROXIED_NAME.upper()}:443", "localhost:{port}"])
def test_its_own_names_and_the_configured_one_are_answered(console: Console, host: str) -> None:
    headers = {"Host": host.format(port=console.port)}
    page = fetch_page(console, "GET", "/login", headers=headers)
    assert page.status == 200 and "api_key" in page.body


@pytest.mark.parametrize(
    "head",
    [b"GET /login HTTP/1.1\r\nHost: attacker.example\r\n",
     b"GET /static/console.js HTTP/1.1\r\nHost: attacker.example:80\r\n",
     b"GET /login HTTP/1.0\r\n",  # no Host at all
     b"GET /login HTTP/1.1\r\nHost: 127.0.0.1:1\r\n",  # another port
     b"GET /login HTTP/1.1\r\nHost: localhost.:{port}\r\n"],
)  # fmt: skip
def test_raw_requests_without_the_consoles_own_host_are_refused(
    console: Console, head: bytes
) -> None:
    data = head.replace(b"{port}", str(console.port).encode()) + b"Connection: close\r\n\r\n"
    answers, _ = exchange(console.port, data)
    assert [(a.status, a.body.decode()) for a in answers] == [(421, REFUSED_HOST)]


def test_two_host_headers_are_refused(console: Console) -> None:
    own = f"127.0.0.1:{console.port}".encode()
    data = b"GET /login HTTP/1.1\r\nHost: " + own + b"\r\nHost: attacker.example\r\n\r\n"
    answers, _ = exchange(console.port, data)
    assert [a.status for a in answers] in ([400], [421])
    assert not any(b"api_key" in a.body for a in answers)  # never the login form


@pytest.mark.parametrize("host", ["127.0.0.1:{port}", "localhost:{port}", "LocalHost:{port}"])
def test_its_own_loopback_names_are_answered(console: Console, host: str) -> None:
    headers = {"Host": host.format(port=console.port)}
    assert fetch_page(console, "GET", "/login", headers=headers).status == 200
    page = fetch_page(console, "POST", "/login", form={"api_key": ADMIN_KEY}, headers=headers)
    assert page.status == 303


# --- wrong keys ------------------------------------------------------------------------


def test_wrong_keys_lock_out_their_address_and_no_other(console: Console) -> None:
    # 200 wrong keys took 0.12 s, every one of them compared.
    guesses = [f"guess-{n:03d}" for n in range(LOGIN_THROTTLE.failures)]
    for guess in guesses:
        page = fetch_page(console, "POST", "/login", form={"api_key": guess}, source=ATTACKER)
        assert page.status == 401 and "Wrong key." in page.body
    for key in ("one-more-guess", ADMIN_KEY):  # refused before any key is compared
        page = fetch_page(console, "POST", "/login", form={"api_key": key}, source=ATTACKER)
        assert page.status == 429 and "set-cookie" not in page.headers
        assert 0 < int(page.headers["retry-after"]) <= LOGIN_THROTTLE.lockout
        assert "Too many wrong keys from your address" in page.body
        assert not any(name in page.body for name in SOURCE_NAMES)
    # Another address, even one that got a key wrong, logs in.
    wrong = fetch_page(console, "POST", "/login", form={"api_key": "typo"}, source=NEIGHBOUR)
    assert wrong.status == 401
    assert session_cookie(console, source=NEIGHBOUR)
    assert session_cookie(console)
    throttled = [
        event
        for event in log_events(console.stack)
        if event["event"] == "console_login" and event["result"] == "throttled"
    ]
    assert [event["remote"] for event in throttled] == [ATTACKER, ATTACKER]
    text = "\n".join(log_lines(console.stack))
    assert not any(key in text for key in [*guesses, "one-more-guess", "typo", ADMIN_KEY])


# --- logging out -----------------------------------------------------------------------


def log_out(console: Console, cookie: str) -> None:
    csrf = csrf_of(fetch_page(console, "GET", "/sources", cookie=cookie))
    page = fetch_page(console, "POST", "/logout", cookie=cookie, form={"csrf": csrf})
    assert (page.status, page.headers["location"]) == (303, "/login")


def test_a_copied_cookie_is_refused_after_logout(console: Console) -> None:
    # Sessions are signed and stateless: a copy stayed valid for 30 minutes after logout.
    copied, other = session_cookie(console), session_cookie(console)
    csrf = csrf_of(fetch_page(console, "GET", "/sources", cookie=copied))
    log_out(console, copied)
    replayed = fetch_page(console, "GET", "/sources", cookie=copied)
    assert (replayed.status, replayed.headers["location"]) == (303, "/login")
    assert fetch_page(console, "GET", "/live.json", cookie=copied).status == 401
    form = {"source": "books", "key": "2026-11", "csrf": csrf}
    assert fetch_page(console, "POST", "/reveal", cookie=copied, form=form).status == 401
    assert fetch_page(console, "GET", "/sources", cookie=other).status == 200  # not ended


def pid_and_status(connection: http.client.HTTPConnection, cookie: str) -> tuple[int, int]:
    """``/live.json`` on a kept-alive connection: the worker's pid (0 when refused)."""
    connection.request("GET", "/live.json", headers={"Cookie": f"sidecar_console={cookie}"})
    response = connection.getresponse()
    body = response.read()
    return (int(body.split(b'"pid":')[1].split(b",")[0]) if response.status == 200 else 0,
            response.status)  # fmt: skip


def test_a_logout_ends_the_session_in_every_worker(tmp_path: Path) -> None:
    with console_stack(tmp_path / "workers", workers=2) as console:
        copied, witness = session_cookie(console), session_cookie(console)
        log_out(console, copied)
        refused_by: set[int] = set()
        for _ in range(64):  # fresh connections, spread over both workers by the kernel
            connection = http.client.HTTPConnection("127.0.0.1", console.port, timeout=DEADLINE)
            try:
                pid, status = pid_and_status(connection, witness)  # which worker this is
                assert status == 200
                assert pid_and_status(connection, copied) == (0, 401)
            finally:
                connection.close()
            refused_by.add(pid)
            if len(refused_by) == 2:
                break
        assert len(refused_by) == 2, "one worker answered every connection"
