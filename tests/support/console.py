"""What the console tests share: a config with an admin key, a stack of the real sidecar
process serving it, a headless Chromium, the console over plain HTTP, and the log."""

from __future__ import annotations

import hashlib
import http.client
import json
import time
import urllib.parse
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NamedTuple, TypeVar

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.remote.webelement import WebElement

from sidecar import schemes
from sidecar.devtools.local_stack import LocalStack, free_port
from tests.support.configs import md5_source, sidecar_config, source_toml
from tests.support.paths import REPO
from tests.support.stacks import running_stack
from tests.support.tokens import BOOKS_TOKEN, REPORT_TOKEN

T = TypeVar("T")
SCREENSHOTS = REPO / "docs" / "console"
CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
ADMIN_KEY = "console-admin-key-for-tests-5b1e0c"
SECOND_ADMIN_KEY = "second-console-admin-key-77d2aa"
CLOUDFRONT_KEY_ID = "K2JCJMDEHXQW5F"
SOURCE_NAMES = ("books", "reports", "public", "videos")
DEADLINE = 10.0


class Console(NamedTuple):
    stack: LocalStack
    port: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


PROXIED_NAME = "console.example.com"


def console_config(folder: Path, admin_port: int, *, workers: int = 1) -> str:
    """Four sources (enforce, report, off, a public-key one) and two admin keys."""
    scheme = schemes.get("cloudfront")
    assert scheme is not None
    pair = scheme.new_key("ecdsa")
    assert pair.public_pem is not None
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "cloudfront.pem").write_bytes(pair.public_pem)
    hashes = [hashlib.sha256(key.encode()).hexdigest() for key in (ADMIN_KEY, SECOND_ADMIN_KEY)]
    admin = f'[admin]\nlisten = "127.0.0.1:{admin_port}"\napi_key_sha256 = {json.dumps(hashes)}\n'
    admin += f"hosts = [{json.dumps(PROXIED_NAME)}]\n\n"  # as a proxy in front names it
    return admin + sidecar_config(
        md5_source("books", "/books/", {"2026-11": BOOKS_TOKEN}),
        md5_source("reports", "/reports/", {"r1": REPORT_TOKEN}, mode="report"),
        md5_source("public", "/public/", mode="off"),
        source_toml(
            "videos",
            "cloudfront",
            "/videos/",
            {CLOUDFRONT_KEY_ID: {"public_key_file": str(folder / "cloudfront.pem")}},
            public_origin="https://d111111abcdef8.cloudfront.net",
        ),
        server={"workers": workers},
    )


@contextmanager
def console_stack(folder: Path, *, workers: int = 1) -> Iterator[Console]:
    """The real sidecar process with the console on; with workers, every one started."""
    port = free_port()
    with running_stack(folder, console_config(folder, port, workers=workers), nginx=False) as stack:
        wait_for(lambda: count_events(stack, "start") >= workers, f"{workers} workers started")
        yield Console(stack, port)


@contextmanager
def chromium() -> Iterator[WebDriver]:
    """Debian's Chromium, headless (as root: no sandbox), driven by its chromedriver."""
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                     "--window-size=1280,860", "--disable-gpu"):  # fmt: skip
        options.add_argument(argument)
    driver = webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))
    driver.set_page_load_timeout(DEADLINE)
    try:
        yield driver
    finally:
        driver.quit()


def log_in(driver: WebDriver, console: Console, key: str = ADMIN_KEY) -> None:
    driver.get(console.url + "/login")
    driver.find_element(By.ID, "api_key").send_keys(key)
    submit(driver, driver.find_element(By.ID, "login"))


def submit(driver: WebDriver, button: WebElement) -> None:
    """Click a form's button and wait until the answer page replaced this one (its
    elements would otherwise still be found): a mark left on this page is gone."""
    driver.execute_script("window.consoleTestMark = true;")
    button.click()
    wait_for(lambda: driver.execute_script(_ANSWER_LOADED), "the answer page")


_ANSWER_LOADED = "return !window.consoleTestMark && document.readyState === 'complete';"


def screenshot(driver: WebDriver, name: str) -> None:
    """docs/console/<name>.png: the README's pictures, made again by every run."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    height = driver.execute_script("return document.documentElement.scrollHeight")
    driver.set_window_size(1280, max(600, min(int(height) + 160, 2400)))
    assert driver.save_screenshot(str(SCREENSHOTS / f"{name}.png"))
    driver.set_window_size(1280, 860)


def wait_for(condition: Callable[[], T], what: str, timeout: float = DEADLINE) -> T:
    """Poll ``condition`` until it is truthy (its value is returned) or the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for: {what}"
        time.sleep(0.05)


def log_lines(stack: LocalStack) -> list[str]:
    return (stack.folder / "sidecar.log").read_text(errors="replace").splitlines()


def log_events(stack: LocalStack) -> list[dict[str, Any]]:
    return [json.loads(line) for line in log_lines(stack) if line.startswith("{")]


def count_events(stack: LocalStack, event: str) -> int:
    return sum(record.get("event") == event for record in log_events(stack))


class Page(NamedTuple):
    status: int
    headers: dict[str, str]
    body: str


def fetch_page(
    console: Console,
    method: str,
    path: str,
    *,
    cookie: str | None = None,
    form: dict[str, str] | None = None,
    headers: dict[str, str] | None = None,
    source: str | None = None,
) -> Page:
    """One request on a fresh connection (with workers, any of them may answer), from the
    loopback address ``source`` when given (a client of its own: 127.0.0.2, …)."""
    connection = http.client.HTTPConnection(
        "127.0.0.1",
        console.port,
        timeout=DEADLINE,
        source_address=(source, 0) if source is not None else None,
    )
    sent = dict(headers or {})
    body = None
    if cookie is not None:
        sent["Cookie"] = f"sidecar_console={cookie}"
    if form is not None:
        body = urllib.parse.urlencode(form)
        sent["Content-Type"] = "application/x-www-form-urlencoded"
    try:
        connection.request(method, path, body=body, headers=sent)
        response = connection.getresponse()
        text = response.read().decode()
        return Page(response.status, {k.lower(): v for k, v in response.getheaders()}, text)
    finally:
        connection.close()


def session_cookie(console: Console, key: str = ADMIN_KEY, source: str | None = None) -> str:
    page = fetch_page(console, "POST", "/login", form={"api_key": key}, source=source)
    assert page.status == 303, page
    cookie = page.headers["set-cookie"]
    return cookie.partition("sidecar_console=")[2].partition(";")[0]


def csrf_of(page: Page) -> str:
    return page.body.partition('name="csrf" value="')[2].partition('"')[0]
