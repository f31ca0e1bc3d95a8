"""The console's Revoke buttons against the real sidecar process with ``[state] path`` (a
real SQLite file), driven in a real headless Chromium: a URL signed and verified ``ok`` in
the playground is revoked with its button and ``/verify`` then denies it ``revoked``; a
key is revoked from the Sources page after a confirmation, and the page says what is
revoked. Over plain HTTP: the buttons' POSTs need the CSRF token and a same-origin
request, as every console form."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import Select

from sidecar.devtools.local_stack import LocalStack, free_port
from tests.support.console import (
    CLOUDFRONT_KEY_ID,
    Console,
    chromium,
    console_config,
    console_stack,
    count_events,
    csrf_of,
    fetch_page,
    log_events,
    log_in,
    session_cookie,
    submit,
    wait_for,
)
from tests.support.requests import verify
from tests.support.stacks import running_stack
from tests.support.tokens import md5_signed


@pytest.fixture(scope="module")
def console(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Console]:
    folder = tmp_path_factory.mktemp("console-revoke")
    port = free_port()
    config = console_config(folder, port) + f'\n[state]\npath = "{folder / "state.db"}"\n'
    with running_stack(folder, config, nginx=False) as stack:
        wait_for(lambda: count_events(stack, "start") >= 1, "the sidecar started")
        yield Console(stack, port)


@pytest.fixture(scope="module")
def browser() -> Iterator[WebDriver]:
    with chromium() as driver:
        yield driver


def reason(stack: LocalStack, uri: str) -> str:
    return verify(stack, uri).headers["x-signature-result"]


def until_reason(stack: LocalStack, uri: str, expected: str, timeout: float = 1.0) -> float:
    started = time.monotonic()
    while (got := reason(stack, uri)) != expected:
        assert time.monotonic() - started < timeout, f"still {got} after {timeout} s"
        time.sleep(0.01)
    return time.monotonic() - started


def text_of(driver: WebDriver, element_id: str) -> str:
    found = wait_for(lambda: driver.find_elements(By.ID, element_id), f"#{element_id}")
    return str(found[0].text)


def test_a_url_revoked_from_the_playground_is_denied_revoked_by_verify(
    browser: WebDriver, console: Console
) -> None:
    log_in(browser, console)
    wait_for(lambda: browser.current_url.endswith("/sources"), "the sources page after login")
    browser.get(console.url + "/playground")
    Select(browser.find_element(By.ID, "source")).select_by_value("books")
    browser.find_element(By.ID, "sign-url").send_keys("/books/revoke-from-console.jpg?w=5")
    submit(browser, browser.find_element(By.ID, "sign"))
    assert text_of(browser, "verify-result") == "ok"
    signed = text_of(browser, "signed-url")
    assert reason(console.stack, signed) == "ok"
    submit(browser, browser.find_element(By.ID, "revoke-grant"))
    revocation_id = text_of(browser, "revocation-id")
    assert "grant of source books" in text_of(browser, "revoked")
    assert until_reason(console.stack, signed, "revoked") < 1.0
    event = next(e for e in log_events(console.stack) if e.get("event") == "revoked")
    assert (event["id"], event["source"], event["admin_key_index"]) == (revocation_id, "books", 0)
    # The playground now shows the reason, and offers no button for a denied URL.
    browser.get(console.url + "/playground")
    browser.find_element(By.ID, "verify-url").send_keys(signed)
    submit(browser, browser.find_element(By.ID, "verify"))
    assert text_of(browser, "verify-result") == "revoked"
    assert not browser.find_elements(By.ID, "revoke-grant")
    # The Sources page says what is revoked in the source.
    assert "revoked: 1 grant" in sources_text(browser, console, "books")  # /verify saw it


def test_a_key_is_revoked_from_the_sources_page_after_a_confirmation(
    browser: WebDriver, console: Console
) -> None:
    log_in(browser, console)
    wait_for(lambda: browser.current_url.endswith("/sources"), "the sources page after login")
    row = browser.find_element(By.CSS_SELECTOR, 'tr[data-source="videos"]')
    submit(browser, row.find_element(By.CSS_SELECTOR, "button.revoke-key"))
    assert (
        f"key {CLOUDFRONT_KEY_ID} of source videos?"
        in browser.find_element(By.TAG_NAME, "main").text
    )
    assert not browser.find_elements(By.ID, "revocation-id")  # nothing revoked yet
    submit(browser, browser.find_element(By.ID, "confirm-revoke-key"))
    assert text_of(browser, "revocation-id")
    assert "key of source videos" in text_of(browser, "revoked")
    # The page reads the view /verify reads, in sync within a second.
    wait_for(lambda: "revoked: every grant of 1 key" in sources_text(browser, console, "videos"),
             "the key listed as revoked", timeout=2.0)  # fmt: skip


def sources_text(browser: WebDriver, console: Console, query: str) -> str:
    browser.get(f"{console.url}/sources?q={query}")
    return text_of(browser, "sources")


def test_the_revoke_forms_need_the_csrf_token_and_the_same_origin(console: Console) -> None:
    cookie = session_cookie(console)
    uri = md5_signed("/books/csrf.jpg")
    form = {"url": uri, "client_ip": "127.0.0.1"}
    refused = fetch_page(console, "POST", "/revoke/grant", cookie=cookie, form=form)
    assert refused.status == 403 and "CSRF" in refused.body
    token = csrf_of(fetch_page(console, "GET", "/sources", cookie=cookie))
    cross_site = {"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"}
    foreign = fetch_page(console, "POST", "/revoke/grant", cookie=cookie,
                         form={**form, "csrf": token}, headers=cross_site)  # fmt: skip
    assert foreign.status == 403
    assert fetch_page(console, "POST", "/revoke/grant", form={**form, "csrf": token}).status == 401
    assert reason(console.stack, uri) == "ok"  # none of these revoked it
    done = fetch_page(console, "POST", "/revoke/grant", cookie=cookie, form={**form, "csrf": token})
    assert done.status == 200 and 'id="revocation-id"' in done.body
    assert until_reason(console.stack, uri, "revoked") < 1.0
    bad = fetch_page(console, "POST", "/revoke/grant", cookie=cookie,
                     form={"url": "/books/x.jpg?s=" + "0" * 32, "csrf": token})  # fmt: skip
    assert bad.status == 400 and "nothing to revoke" in bad.body


def test_without_state_there_is_no_working_revoke_button(tmp_path: Path) -> None:
    with console_stack(tmp_path) as stateless:
        cookie = session_cookie(stateless)
        sources = fetch_page(stateless, "GET", "/sources", cookie=cookie)
        assert "Show token" in sources.body and "/revoke/key" not in sources.body
        form = {"source": "books", "url": "/books/a.jpg", "csrf": csrf_of(sources)}
        signed = fetch_page(stateless, "POST", "/playground/sign", cookie=cookie, form=form)
        assert '<span id="verify-result">ok</span>' in signed.body
        assert 'id="revoke-grant" disabled' in signed.body and "[state]" in signed.body
        uri = md5_signed("/books/stateless.jpg")
        asked = fetch_page(stateless, "POST", "/revoke/grant", cookie=cookie,
                           form={"url": uri, "csrf": form["csrf"]})  # fmt: skip
        assert asked.status == 409 and "[state]" in asked.body


def test_a_locked_store_is_a_503_page_and_nothing_is_revoked(console: Console) -> None:
    cookie = session_cookie(console)
    token = csrf_of(fetch_page(console, "GET", "/sources", cookie=cookie))
    uri = md5_signed("/books/locked-console.jpg")
    holder = sqlite3.connect(console.stack.folder / "state.db", isolation_level=None)
    try:
        holder.execute("BEGIN IMMEDIATE")  # the write lock, as a long writer holds it
        page = fetch_page(console, "POST", "/revoke/grant", cookie=cookie,
                          form={"url": uri, "csrf": token})  # fmt: skip
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert page.status == 503 and "did not take the revocation" in page.body
    assert "state.db" not in page.body
    assert reason(console.stack, uri) == "ok"
