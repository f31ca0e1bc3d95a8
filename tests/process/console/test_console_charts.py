"""The Live page's charts in a real headless Chromium against the real sidecar process:
a burst of denials for one source, sent to ``/verify``, shows in that source's chart, as
its reason, without a reload; the Sources page draws its sparkline. The Live page with
its charts is photographed into docs/console/live-charts.png."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from selenium.webdriver.remote.webdriver import WebDriver

from tests.support.console import (
    SCREENSHOTS,
    Console,
    chromium,
    console_stack,
    log_in,
    screenshot,
    wait_for,
)
from tests.support.requests import verify
from tests.support.tokens import md5_signed

SAMPLED = 25.0  # a sample every 5 s, a redraw every 5 s, a loaded machine
BURST = 20

# One script call (the charts are swapped every 5 s: an element found may be replaced).
_CARDS = """
return Array.from(document.querySelectorAll('#charts section.card')).map(function (card) {
  return {
    source: card.dataset.source,
    layers: Array.from(card.querySelectorAll('path.layer')).map(function (p) {
      return [p.dataset.layer, Number(p.dataset.total)];
    }),
    legend: Array.from(card.querySelectorAll('ul.legend li')).map(function (li) {
      return [li.dataset.reason, li.textContent];
    }),
    keys: Array.from(card.querySelectorAll('.keys li')).map(function (li) {
      return li.dataset.key;
    }),
    text: card.innerText,
  };
});
"""


@pytest.fixture(scope="module")
def console(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Console]:
    folder = tmp_path_factory.mktemp("console-charts")
    # Traffic from the start: samples build up while Chromium starts.
    with console_stack(folder) as running, steady_traffic(running):
        yield running


@pytest.fixture(scope="module")
def browser() -> Iterator[WebDriver]:
    with chromium() as driver:
        yield driver


def cards(driver: WebDriver) -> dict[str, dict[str, Any]]:
    return {card["source"]: card for card in driver.execute_script(_CARDS)}


def samples_drawn(driver: WebDriver, source: str) -> int:
    """The samples in a source's decisions chart (its line's points)."""
    points = driver.execute_script(
        "const c = document.querySelector('#charts section.card[data-source=\"' + arguments[0]"
        " + '\"] polyline.series'); return c ? c.getAttribute('points') : '';",
        source,
    )
    return len(str(points).split())


@contextmanager
def steady_traffic(console: Console) -> Iterator[None]:
    """Allowed requests for two sources, a few a second, until the block ends."""
    stop = threading.Event()

    def send() -> None:
        number = 0
        while not stop.wait(0.25):
            number += 1
            verify(console.stack, md5_signed(f"/books/x.png?w={number}"))
            verify(console.stack, f"/public/p.png?w={number}")

    sender = threading.Thread(target=send, daemon=True)
    sender.start()
    try:
        yield
    finally:
        stop.set()
        sender.join()


def test_a_burst_of_denials_shows_at_its_source_and_reason_without_a_reload(
    browser: WebDriver, console: Console
) -> None:
    log_in(browser, console)
    wait_for(lambda: browser.current_url.endswith("/sources"), "the sources page after login")

    def burst_drawn() -> dict[str, dict[str, Any]]:
        found = cards(browser)
        books = found.get("books")
        return found if books and ["invalid", BURST] in books["layers"] else {}

    browser.get(console.url + "/live")
    browser.execute_script("window.notReloaded = true;")
    wait_for(lambda: samples_drawn(browser, "books") >= 2, "2 samples", timeout=SAMPLED)
    started = time.time()
    for number in range(BURST):  # the burst: one source, one reason
        assert verify(console.stack, f"/books/x.png?n={number}&s=" + "0" * 32).status == 401
    found = wait_for(burst_drawn, "the burst in the books chart", timeout=SAMPLED)

    assert browser.execute_script("return window.notReloaded === true;")
    books, public = found["books"], found["public"]
    assert books["layers"] == [["invalid", BURST]]  # that reason, and only that one
    reason, legend = books["legend"][0]
    assert reason == "invalid" and f"invalid: {BURST}, first in the window at " in legend
    first = time.strptime(legend.rpartition(" at ")[2].removesuffix(" UTC"), "%H:%M:%S")
    apart = (_seconds_of_day(first) - _seconds_of_day(time.gmtime(started))) % 86400
    assert apart <= 15  # the sample that took it: at most two intervals later
    assert books["keys"] == ["2026-11"]  # the key that matched, and since when
    assert f" decisions, {BURST} rejected (" in books["text"]
    assert public["layers"] == [] and "No denials." in public["text"]  # not at another source
    screenshot(browser, "live-charts")


def test_the_charts_fit_a_narrow_window(browser: WebDriver, console: Console) -> None:
    browser.set_window_size(420, 900)
    try:
        browser.get(console.url + "/live")
        wait_for(lambda: "books" in cards(browser), "the books card")
        widths = browser.execute_script(
            "const c = document.getElementById('charts');"
            "return [c.scrollWidth, c.clientWidth, document.querySelector('svg.chart')"
            ".getBoundingClientRect().width];"
        )
        assert widths[0] <= widths[1] and 200 < widths[2] <= 420, widths
    finally:
        browser.set_window_size(1280, 860)


def test_the_sources_page_draws_a_sparkline_per_source_with_traffic(
    browser: WebDriver, console: Console
) -> None:
    browser.get(console.url + "/sources")
    labels = browser.execute_script(
        "return Array.from(document.querySelectorAll('#sources tr')).map(function (tr) {"
        "  const s = tr.querySelector('svg.spark');"
        "  return [tr.dataset.source, s ? s.getAttribute('aria-label') : null]; });"
    )
    by_source = dict(label for label in labels if label[0])
    assert by_source["books"] is not None and f"{BURST} rejected" in by_source["books"]
    assert by_source["videos"] is None  # no traffic: no drawing, said in words
    picture = (SCREENSHOTS / "live-charts.png").stat()
    assert picture.st_size > 5000


def _seconds_of_day(moment: time.struct_time) -> int:
    return moment.tm_hour * 3600 + moment.tm_min * 60 + moment.tm_sec
