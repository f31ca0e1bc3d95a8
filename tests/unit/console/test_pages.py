"""The console's HTML escapes everything it echoes, and shows no key before a reveal."""

from __future__ import annotations

import dataclasses
import ipaddress

from sidecar import schemes
from sidecar.policy.rules import Rules, origin_pattern
from sidecar.policy.settings import Mode, SourceSettings, UseLimit
from sidecar.runtime.console import pages
from sidecar.runtime.console.history import History
from sidecar.runtime.console.numbers import Snapshot, read
from sidecar.runtime.console.playground import Answer
from sidecar.runtime.tally import Counts
from sidecar.schemes.base import KeyMaterial, SourceSpec
from sidecar.schemes.md5_token import Md5TokenSettings

TOKEN = b'books-t0ken-<b>&"quoted"-0123'
HOSTILE = '/books/x.png?q="><script>alert(1)</script>'


def books() -> SourceSettings:
    scheme = schemes.get("md5-token")
    assert scheme is not None
    spec = SourceSpec("books", "/books/", (KeyMaterial("k1", secret=TOKEN),), Md5TokenSettings())
    return SourceSettings("books", "md5-token", "/books/", None, Mode.ENFORCE, 403,
                          scheme.build(spec))  # fmt: skip


def test_the_playground_escapes_what_it_echoes() -> None:
    answer = Answer(401, "invalid", "why", "/verify", (("X-Original-URI", HOSTILE),))
    page = pages.playground([books()], "tok", url=HOSTILE, signed=HOSTILE, answer=answer)
    assert "<script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert 'value="/books/x.png?q=&quot;&gt;' in page


def test_the_sources_page_shows_no_key_before_a_reveal() -> None:
    page = pages.sources([books()], 1, "", Snapshot(), "tok")
    assert TOKEN.decode() not in page and "books-t0ken" not in page
    assert 'name="csrf" value="tok"' in page


def test_a_revealed_key_is_escaped() -> None:
    page = pages.reveal("books", "k1", "shared secret", TOKEN.decode(), "tok")
    assert "books-t0ken-&lt;b&gt;&amp;&quot;quoted&quot;-0123" in page


def test_pages_load_no_inline_script_or_style() -> None:
    page = pages.login(error=True)
    assert "<script>" not in page and "style=" not in page and "<style" not in page
    assert '<script src="/static/console.js" defer></script>' in page


def test_the_login_form_says_when_this_address_must_wait() -> None:
    page = pages.login(error=False, retry_after=412)
    assert "Too many wrong keys from your address: try again in 412 seconds." in page
    assert 'name="api_key"' in page and "Wrong key." not in page


def _with_rules() -> SourceSettings:
    shop = origin_pattern("https://*.example.com")
    port = origin_pattern("http://shop.example.com:8080")
    assert shop is not None and port is not None
    rules = Rules(referrers=(shop, port), allow_no_referrer=False,
                  networks=(ipaddress.ip_network("203.0.113.0/24"),),
                  countries_blocked=frozenset({"XX", "AA"}))  # fmt: skip
    return dataclasses.replace(books(), rules=rules, uses=UseLimit(3, 120))


def test_the_sources_page_lists_the_rules_that_apply() -> None:
    page = pages.sources([_with_rules(), books()], 2, "", Snapshot(), "tok")
    assert (
        "<li>Referer from https://*.example.com, http://shop.example.com:8080 (none: refused)</li>"
        "<li>client in 203.0.113.0/24</li><li>countries blocked AA, XX</li>"
        "<li>max_uses 3 per grant (a client&#x27;s requests within use_window 120 s are one "
        "use)</li>"
    ) in page
    assert '<span class="muted">the signature alone</span>' in page
    off = dataclasses.replace(books(), mode=Mode.OFF)
    assert '<span class="muted">nothing</span>' in pages.sources([off], 1, "", Snapshot(), "t")


def test_the_sources_page_draws_a_sparkline_of_a_source_with_traffic() -> None:
    history = History()
    for step, (total, invalid) in enumerate(((0, 0), (8, 0), (20, 5))):
        counts = Counts(
            verifications={
                ("books", "md5", "ok", "allow"): float(total - invalid),
                ("books", "md5", "invalid", "deny"): float(invalid),
            }
        )
        history.add(read(counts), 5.0 * step)  # fmt: skip
    page = pages.sources([books()], 1, "", Snapshot(), "tok",
                         windows={"books": history.window("books")})  # fmt: skip
    assert 'aria-label="books: 20 decisions, 5 rejected in the last 15 minutes"' in page
    assert '<path class="rejected" fill="url(#pat-0)" d="M' in page and 'id="pat-0"' in page
    assert '<path class="decisions" fill="#c7d7f2" d="M' in page
    quiet = pages.sources([books()], 1, "", Snapshot(), "tok")
    assert "no traffic in 15 min" in quiet and 'class="decisions"' not in quiet


def test_the_live_page_holds_the_charts_and_escapes_its_filter() -> None:
    page = pages.live(Snapshot(), "tok", 1, "<p id=charts-shown>x</p>", HOSTILE)
    assert '<div id="charts"><p id=charts-shown>x</p></div>' in page
    assert "<script>" not in page and 'value="/books/x.png?q=&quot;&gt;&lt;script&gt;' in page
