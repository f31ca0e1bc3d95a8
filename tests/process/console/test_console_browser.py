"""The console driven in a real headless Chromium against the real sidecar process: log
in with the key, see every source, reveal a token (and its log line), sign a URL in the
playground and see ``ok``, tamper with it and see the reason, watch the live numbers
move; a wrong key sees nothing. Each page is photographed into docs/console/."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import Select

from sidecar.runtime.console.session import key_label
from tests.support.console import (
    ADMIN_KEY,
    CLOUDFRONT_KEY_ID,
    SCREENSHOTS,
    SOURCE_NAMES,
    Console,
    chromium,
    console_stack,
    log_events,
    log_in,
    log_lines,
    screenshot,
    submit,
    wait_for,
)
from tests.support.requests import verify
from tests.support.tokens import BOOKS_TOKEN, REPORT_TOKEN, md5_signed

IMPORTED = time.time()  # before any test of this module ran


@pytest.fixture(scope="module")
def console(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Console]:
    with console_stack(tmp_path_factory.mktemp("console")) as running:
        yield running


@pytest.fixture(scope="module")
def browser() -> Iterator[WebDriver]:
    with chromium() as driver:
        yield driver


@pytest.fixture
def logged_in(browser: WebDriver, console: Console) -> WebDriver:
    log_in(browser, console)
    wait_for(lambda: browser.current_url.endswith("/sources"), "the sources page after login")
    return browser


def text_of(driver: WebDriver, element_id: str) -> str:
    """The text of an element, waited for (a form's answer page may still be loading)."""
    found = wait_for(lambda: driver.find_elements(By.ID, element_id), f"#{element_id}")
    return str(found[0].text)


def test_a_wrong_key_sees_nothing(browser: WebDriver, console: Console) -> None:
    browser.delete_all_cookies()
    log_in(browser, console, key="not-the-admin-key")
    assert text_of(browser, "login-error") == "Wrong key."
    screenshot(browser, "login-wrong-key")
    for path in ("/sources", "/live", "/report", "/playground"):
        browser.get(console.url + path)
        assert browser.current_url == console.url + "/login"
        source = browser.page_source
        assert not any(name in source for name in SOURCE_NAMES), path
        assert BOOKS_TOKEN not in source
    browser.get(console.url + "/live.json")
    assert "books" not in browser.page_source and "log in" in browser.page_source


def test_playground_signs_a_url_that_verifies_and_explains_a_tampered_one(
    logged_in: WebDriver,
) -> None:
    logged_in.get(logged_in.current_url.rpartition("/")[0] + "/playground")
    Select(logged_in.find_element(By.ID, "source")).select_by_value("books")
    logged_in.find_element(By.ID, "sign-url").send_keys("/books/x.png?w=400")
    submit(logged_in, logged_in.find_element(By.ID, "sign"))
    signed = text_of(logged_in, "signed-url")
    assert signed == md5_signed("/books/x.png?w=400")  # the documented formula
    assert (text_of(logged_in, "verify-status"), text_of(logged_in, "verify-result")) == (
        "200",
        "ok",
    )
    screenshot(logged_in, "playground-ok")
    field = logged_in.find_element(By.ID, "verify-url")
    assert field.get_attribute("value") == signed  # ready to tamper with
    field.clear()
    field.send_keys(signed.replace("w=400", "w=4000"))
    submit(logged_in, logged_in.find_element(By.ID, "verify"))
    assert (text_of(logged_in, "verify-status"), text_of(logged_in, "verify-result")) == (
        "401",
        "invalid",
    )
    assert "changed after signing" in text_of(logged_in, "verify-why")
    screenshot(logged_in, "playground-tampered")


def test_live_numbers_follow_real_verify_requests_without_a_reload(
    logged_in: WebDriver, console: Console
) -> None:
    logged_in.get(console.url + "/live")
    logged_in.execute_script("window.notReloaded = true;")

    def books_total() -> float | None:
        # One script call: the table is redrawn every 2 s, an element found may be replaced.
        text = logged_in.execute_script(
            "const c = document.querySelector('#live-sources tr[data-source=\"books\"] .total');"
            "return c ? c.textContent : null;"
        )
        return float(text) if text else None

    wait_for(lambda: "Updated" in text_of(logged_in, "live-status"), "a first refresh")
    before = books_total() or 0.0
    for width in range(6):
        assert verify(console.stack, md5_signed(f"/books/x.png?w={width}")).status == 200
    for _ in range(3):
        assert verify(console.stack, "/books/x.png?w=1&s=" + "0" * 32).status == 401
    wait_for(lambda: books_total() == before + 9, "the books total to grow by 9")
    assert logged_in.execute_script("return window.notReloaded === true;")
    reasons = logged_in.execute_script("return document.getElementById('live-reasons').innerText;")
    assert "books\tinvalid\tdeny" in reasons
    screenshot(logged_in, "live")


def test_report_mode_shows_what_would_have_been_denied(
    logged_in: WebDriver, console: Console
) -> None:
    for number in range(4):
        assert verify(console.stack, f"/reports/r.png?n={number}").status == 200  # let through

    def reports_missing() -> int:
        # Numbers are read at most once a second per process: load until they show.
        logged_in.get(console.url + "/report")
        rows = logged_in.find_elements(By.CSS_SELECTOR, "#would-deny tbody tr")
        found = [row.text for row in rows if row.text.startswith("reports missing")]
        return int(found[0].split()[-1]) if found else 0

    wait_for(lambda: reports_missing() >= 4, "4 would-deny 'missing' requests of reports")
    assert "reports" in text_of(logged_in, "report-sources")
    screenshot(logged_in, "report")


def test_logged_in_every_source_is_listed_with_its_keys(logged_in: WebDriver) -> None:
    rows = logged_in.find_elements(By.CSS_SELECTOR, "#sources tbody tr")
    by_name = {row.get_attribute("data-source"): row.text for row in rows}
    assert set(by_name) == set(SOURCE_NAMES)
    assert "md5-token" in by_name["books"] and "enforce" in by_name["books"]
    assert "matches, last match: 20" in by_name["books"]  # the playground and live tests matched
    assert "/books/" in by_name["books"] and "2026-11" in by_name["books"]
    assert "report" in by_name["reports"] and "off" in by_name["public"]
    assert CLOUDFRONT_KEY_ID in by_name["videos"] and "Show public key" in by_name["videos"]
    fingerprints = [e.text for e in logged_in.find_elements(By.CSS_SELECTOR, "#sources .fp")]
    assert len(fingerprints) == 3 and all(len(f) == 12 for f in fingerprints)
    # No secret on the page until revealed.
    assert BOOKS_TOKEN not in logged_in.page_source
    assert REPORT_TOKEN not in logged_in.page_source
    screenshot(logged_in, "sources")


def test_show_token_reveals_it_and_logs_who_asked(logged_in: WebDriver, console: Console) -> None:
    books = logged_in.find_element(By.CSS_SELECTOR, 'tr[data-source="books"]')
    submit(logged_in, books.find_element(By.CSS_SELECTOR, "button.reveal"))
    assert text_of(logged_in, "revealed") == BOOKS_TOKEN
    screenshot(logged_in, "show-token")
    line = wait_for(
        lambda: [e for e in log_events(console.stack) if e["event"] == "console_reveal"],
        "the console_reveal log line",
    )[-1]
    assert line["source"] == "books" and line["key"] == "2026-11"
    assert line["admin_key_index"] == 0
    assert line["admin_key"] == key_label(_sha256(ADMIN_KEY))
    assert line["remote"] == "127.0.0.1"
    # The token and the admin key are in no log line.
    assert not any(BOOKS_TOKEN in text or ADMIN_KEY in text for text in log_lines(console.stack))


def test_show_public_key_of_a_public_key_source(logged_in: WebDriver) -> None:
    videos = logged_in.find_element(By.CSS_SELECTOR, 'tr[data-source="videos"]')
    submit(logged_in, videos.find_element(By.CSS_SELECTOR, "button.reveal"))
    assert text_of(logged_in, "revealed").startswith("-----BEGIN PUBLIC KEY-----")


def _sha256(text: str) -> bytes:
    import hashlib

    return hashlib.sha256(text.encode()).digest()


def test_screenshots_were_written() -> None:
    # Runs last in this module: every page above left its picture, in this run.
    for name in ("login-wrong-key", "sources", "show-token", "playground-ok",
                 "playground-tampered", "live", "report"):  # fmt: skip
        picture = (SCREENSHOTS / f"{name}.png").stat()
        assert picture.st_size > 5000, name
        assert picture.st_mtime >= IMPORTED, f"{name}.png was not written by this run"
