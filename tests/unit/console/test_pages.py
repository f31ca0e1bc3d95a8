"""The console's HTML escapes everything it echoes, and shows no key before a reveal."""

from __future__ import annotations

from sidecar import schemes
from sidecar.policy.settings import Mode, SourceSettings
from sidecar.runtime.console import pages
from sidecar.runtime.console.numbers import Snapshot
from sidecar.runtime.console.playground import Answer
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
