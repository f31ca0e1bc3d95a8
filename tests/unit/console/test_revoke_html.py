"""The console's Revoke buttons and what the Sources page says is revoked: each button is
a POST form with the CSRF token, everything echoed is escaped, and without a store there
is no working button."""

from __future__ import annotations

import time

from sidecar import schemes
from sidecar.policy.revocations import Kind, RevokedView, new_revocation
from sidecar.policy.settings import Mode, SourceSettings
from sidecar.runtime.console import applies, pages, revoke_html
from sidecar.runtime.console.numbers import Snapshot
from sidecar.runtime.console.playground import Answer
from sidecar.schemes.base import KeyMaterial, SourceSpec
from sidecar.schemes.md5_token import Md5TokenSettings

HOSTILE = '/books/x.png?q="><script>alert(1)</script>'
NOW = time.time()


def books() -> SourceSettings:
    scheme = schemes.get("md5-token")
    assert scheme is not None
    spec = SourceSpec("books", "/books/", (KeyMaterial("k1", secret=b"t" * 20),),
                      Md5TokenSettings())  # fmt: skip
    return SourceSettings("books", "md5-token", "/books/", None, Mode.ENFORCE, 403,
                          scheme.build(spec))  # fmt: skip


def test_the_grant_button_posts_the_url_it_verified_with_the_csrf_token_escaped() -> None:
    form = revoke_html.grant_button("tok", HOSTILE, "img.example.com", "203.0.113.7", enabled=True)
    assert form.startswith('<form method="post" action="/revoke/grant"')
    assert '<input type="hidden" name="csrf" value="tok">' in form
    assert "<script>" not in form and 'value="/books/x.png?q=&quot;&gt;&lt;script&gt;' in form
    assert 'name="host" value="img.example.com"' in form
    assert 'name="client_ip" value="203.0.113.7"' in form


def test_without_a_store_the_playground_button_is_disabled_and_says_why() -> None:
    button = revoke_html.grant_button("tok", "/books/a.jpg", None, "127.0.0.1", enabled=False)
    assert "<form" not in button and "disabled" in button
    assert "[state]" in button


def test_the_playground_shows_the_button_it_is_given_under_the_answer() -> None:
    answer = Answer(200, "ok", "why", "/verify", ())
    button = revoke_html.grant_button("tok", "/books/a.jpg", None, "127.0.0.1", enabled=True)
    page = pages.playground([books()], "tok", signed="/books/a.jpg", answer=answer, revoke=button)
    assert page.index('id="verify-result"') < page.index('id="revoke-grant"')


def test_each_key_has_a_revoke_button_only_when_a_store_is_open() -> None:
    with_store = pages.sources([books()], 1, "", Snapshot(), "tok", revocable=True)
    without = pages.sources([books()], 1, "", Snapshot(), "tok")
    assert with_store.count('action="/revoke/key"') == 1
    assert 'name="key" value="k1"' in with_store and 'name="source" value="books"' in with_store
    assert "/revoke/key" not in without


def test_the_sources_page_says_what_is_revoked_in_each_source() -> None:
    records = [
        new_revocation("books", Kind.GRANT, "ab" * 16, None, NOW),
        new_revocation("books", Kind.GRANT, "cd" * 16, NOW + 60, NOW),
        new_revocation("books", Kind.KEY, "k1", None, NOW),
        new_revocation("books", Kind.PREFIX, "/books/<old>/", None, NOW),
        new_revocation("books", Kind.GRANT, "ef" * 16, NOW - 1, NOW - 60),  # ended
        new_revocation("other", Kind.KEY, "k9", None, NOW),
    ]
    view = RevokedView(records, NOW)
    assert applies.lines(books(), view) == [
        "revoked: 2 grants; every grant of 1 key; every grant under /books/<old> "
        "(sidecar revocations lists them)"
    ]
    assert "/books/&lt;old&gt;" in applies.cell(books(), view)
    assert applies.lines(books(), RevokedView(records[-1:], NOW)) == []
    assert applies.lines(books()) == []  # without [state]


def test_many_revoked_prefixes_are_counted_past_the_first_few() -> None:
    prefixes = tuple(f"/books/{n}/" for n in range(8))
    line = revoke_html.summary_line(0, 0, prefixes)
    assert line is not None and line.endswith(
        "/books/4/ and 3 more (sidecar revocations lists them)"
    )
    assert revoke_html.summary_line(0, 0, ()) is None
