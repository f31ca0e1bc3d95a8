"""The console's HTML: small render functions, every value escaped (``html.escape``).

No template engine and no inline script or style (the Content-Security-Policy allows
neither): the one stylesheet and the one script are files of this package.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from html import escape

from sidecar.policy.revocations import RevokedView
from sidecar.policy.settings import Mode, SourceSettings
from sidecar.runtime.console import applies, charts, revoke_html
from sidecar.runtime.console.history import CAPACITY, SourceWindow
from sidecar.runtime.console.keys import key_views
from sidecar.runtime.console.numbers import Snapshot, rejected, would_deny_rows
from sidecar.runtime.console.playground import Answer
from sidecar.schemes.base import KeyKind

NAV = (("/sources", "Sources"), ("/live", "Live"), ("/report", "Report mode"),
       ("/playground", "Playground"))  # fmt: skip


def layout(title: str, body: str, *, csrf: str | None, footer: str = "") -> str:
    """A whole page; with ``csrf`` (logged in), the navigation and the log-out button."""
    nav = ""
    if csrf is not None:
        links = "".join(f'<a href="{href}">{escape(name)}</a>' for href, name in NAV)
        nav = (f"<nav>{links}</nav>"
               f'<form method="post" action="/logout" class="logout">{_csrf(csrf)}'
               '<button type="submit">Log out</button></form>')  # fmt: skip
    return (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(title)} · signed-url-sidecar</title>"
        '<link rel="stylesheet" href="/static/console.css">'
        '<script src="/static/console.js" defer></script></head><body>'
        f'<header><span class="brand">signed-url-sidecar console</span>{nav}</header>'
        f"<main><h1>{escape(title)}</h1>{body}</main>"
        f"<footer>{escape(footer)}</footer></body></html>\n"
    )


def login(error: bool, retry_after: int | None = None) -> str:
    """The login form; ``error`` after a wrong key, ``retry_after`` (seconds) while this
    address is refused for too many of them."""
    message = '<p class="error" id="login-error">Wrong key.</p>' if error else ""
    if retry_after is not None:
        message = ('<p class="error" id="login-error">Too many wrong keys from your address: '
                   f"try again in {retry_after} seconds.</p>")  # fmt: skip
    body = (
        f"{message}<p>Log in with an admin API key (its SHA-256 is in "
        "<code>[admin] api_key_sha256</code>).</p>"
        '<form method="post" action="/login" class="stack">'
        '<label>API key <input type="password" name="api_key" id="api_key" '
        'autocomplete="off" required autofocus></label>'
        '<button type="submit" id="login">Log in</button></form>'
    )
    return layout("Log in", body, csrf=None)


def sources(
    shown: list[SourceSettings],
    total: int,
    query: str,
    snapshot: Snapshot,
    csrf: str,
    *,
    untracked: frozenset[str] = frozenset(),
    windows: dict[str, SourceWindow] | None = None,
    revocations: RevokedView | None = None,
    revocable: bool = False,
) -> str:
    """``untracked``: sources whose single key has no series of its own (many sources):
    its matches are shown as the source's ok decisions. ``windows``: each shown source's
    last 15 minutes, for its sparkline. ``revocations``: what is revoked ([state]);
    ``revocable``: a store is open, so each key gets a Revoke button."""
    now, windows = time.time(), windows or {}
    rows = "".join(
        _source_row(source, snapshot, csrf, now, source.name in untracked, revocable=revocable)
        + f'<td class="spark">{applies.spark(windows.get(source.name), CAPACITY)}</td>'
        f"<td>{applies.cell(source, revocations)}</td></tr>"
        for source in shown
    )
    count = f"{len(shown)} of {total} sources" if len(shown) < total else f"{total} sources"
    body = (
        '<form method="get" action="/sources" class="inline">'
        f'<input type="search" name="q" value="{escape(query)}" placeholder="name or prefix">'
        f'<button type="submit">Filter</button> <span class="muted">{count}</span></form>'
        f'{charts.defs()}<table id="sources"><thead><tr><th>Source</th><th>Scheme</th>'
        "<th>Mode</th><th>Path prefix</th><th>Hosts</th><th>Keys (newest first)</th>"
        "<th>Last 15 min: decisions / rejected</th><th>Rules</th></tr></thead>"
        f"<tbody>{rows}</tbody></table>"
        '<p class="muted">Read-only: the config file (in git) is the source of truth. '
        "A fingerprint is the first 12 hex digits of the key's SHA-256.</p>"
    )
    return layout("Sources", body, csrf=csrf)


def _source_row(
    source: SourceSettings,
    snapshot: Snapshot,
    csrf: str,
    now: float,
    untracked: bool,
    *,
    revocable: bool = False,
) -> str:
    keys = []
    for view in key_views(source):
        pair = (source.name, view.id)
        label = "Show public key" if view.kind is KeyKind.PUBLIC_KEY else "Show token"
        if untracked:
            allowed = snapshot.counts(source.name).by_reason.get(("ok", "allow"), 0.0)
            usage = f"{_matches(allowed)} (the source's ok decisions)"
        else:
            matches = _matches(snapshot.key_matches.get(pair, 0.0))
            usage = f"{matches}, last match: {_ago(snapshot.key_last_match.get(pair), now)}"
        keys.append(
            f'<li><code>{escape(view.id)}</code> <span class="fp" title="fingerprint">'
            f'{escape(view.fingerprint)}</span> <span class="muted">{usage}</span>'
            '<form method="post" action="/reveal" class="inline">'
            f'{_csrf(csrf)}<input type="hidden" name="source" value="{escape(source.name)}">'
            f'<input type="hidden" name="key" value="{escape(view.id)}">'
            f'<button type="submit" class="reveal">{label}</button></form>'
            + (revoke_html.key_button(csrf, source.name, view.id) if revocable else "")
            + "</li>"
        )
    hosts = ", ".join(sorted(source.hosts)) if source.hosts else "any"
    key_list = f"<ul>{''.join(keys)}</ul>" if keys else '<span class="muted">none</span>'
    return (
        f'<tr data-source="{escape(source.name)}"><td>{escape(source.name)}</td>'
        f'<td>{escape(source.scheme)}</td><td class="mode-{escape(source.mode)}">'
        f"{escape(source.mode)}</td><td><code>{escape(source.path_prefix)}</code></td>"
        f"<td>{escape(hosts)}</td><td>{key_list}</td>"
    )  # the caller adds the sparkline and the rules, and closes the row


def live(snapshot: Snapshot, csrf: str, pid: int, charts_html: str = "", query: str = "") -> str:
    """The tables of the last 2 seconds, and ``charts_html`` (``live_charts.fragment``)
    of the last 15 minutes, filtered by ``query``."""
    active = [(name, snapshot.sources[name]) for name in sorted(snapshot.as_json())]
    source_rows = "".join(
        f'<tr data-source="{escape(name)}"><td>{escape(name)}</td><td class="num total">'
        f'{counts.total:.0f}</td><td class="num">{rejected(counts):.0f}</td>'
        f'<td class="num">{_percent(rejected(counts), counts.total)}</td>'
        '<td class="num">&ndash;</td><td class="num">&ndash;</td></tr>'
        for name, counts in active
    )
    reason_rows = "".join(
        f"<tr><td>{escape(name)}</td><td>{escape(reason)}</td><td>{escape(decision)}</td>"
        f'<td class="num">{value:.0f}</td><td class="num">&ndash;</td></tr>'
        for name, counts in active
        for (reason, decision), value in sorted(counts.by_reason.items())
        if value
    )
    body = (
        '<p class="muted">From this service\'s own counters (every worker summed), '
        'refreshed every 2 seconds. <span id="live-status"></span></p>'
        '<h2>Last 15 minutes</h2><form method="get" action="/live" class="inline">'
        f'<input type="search" name="source" value="{escape(query)}" placeholder="source">'
        ' <button type="submit">Filter</button></form> <span class="muted">Sampled every 5 '
        'seconds, redrawn in place. <span id="charts-status"></span></span>'
        f'<div id="charts">{charts_html}</div>'
        '<h2>Decisions per source</h2><table id="live-sources"><thead><tr><th>Source</th>'
        "<th>Decisions</th><th>Rejected</th><th>Rejected %</th><th>Decisions/s</th>"
        f"<th>Rejected %, last 2 s</th></tr></thead><tbody>{source_rows}</tbody></table>"
        '<h2>By reason</h2><table id="live-reasons"><thead><tr><th>Source</th><th>Reason</th>'
        "<th>Decision</th><th>Count</th><th>Per second</th></tr></thead>"
        f"<tbody>{reason_rows}</tbody></table>"
        '<p class="muted">Sources that have seen no request are not listed (they count 0).</p>'
    )
    return layout("Live", body, csrf=csrf, footer=f"served by worker pid {pid}")


def report(report_sources: Iterable[SourceSettings], snapshot: Snapshot, csrf: str) -> str:
    names = "".join(
        f"<li><code>{escape(s.name)}</code> ({escape(s.scheme)}, "
        f"<code>{escape(s.path_prefix)}</code>)</li>"
        for s in report_sources
    )
    rows = "".join(
        f"<tr><td>{escape(source)}</td><td>{escape(reason)}</td>"
        f'<td class="num">{value:.0f}</td></tr>'
        for source, reason, value in would_deny_rows(snapshot)
    )
    body = (
        '<p>Sources in <code>mode = "report"</code> verify every request but let it '
        "through: these are the requests <code>enforce</code> would have denied, by reason. "
        "Switch a source to enforce (in the config) once this stays empty.</p>"
        f'<h2>Sources in report mode</h2><ul id="report-sources">{names or "<li>none</li>"}</ul>'
        '<h2>Would have been denied</h2><table id="would-deny"><thead><tr><th>Source</th>'
        f"<th>Reason</th><th>Requests</th></tr></thead><tbody>{rows}</tbody></table>"
    )
    return layout("Report mode", body, csrf=csrf)


def reveal(source: str, key_id: str, kind: str, text: str, csrf: str) -> str:
    body = (
        f"<p>{escape(kind.capitalize())} of key <code>{escape(key_id)}</code> of source "
        f"<code>{escape(source)}</code>. This reveal was logged with who asked.</p>"
        f'<pre id="revealed">{escape(text)}</pre><p><a href="/sources">Back to sources</a></p>'
    )
    return layout("Key", body, csrf=csrf)


def playground(
    signable: list[SourceSettings],
    csrf: str,
    *,
    chosen: str = "",
    url: str = "",
    signed: str = "",
    answer: Answer | None = None,
    error: str = "",
    verify_only: bool = False,
    revoke: str = "",
) -> str:
    """``revoke``: the Revoke button for a URL that verified (``revoke_html``)."""
    options = "".join(
        f'<option value="{escape(s.name)}"{" selected" if s.name == chosen else ""}>'
        f"{escape(s.name)} ({escape(s.scheme)}, {escape(s.path_prefix)})</option>"
        for s in signable
    )
    body = (
        (f'<p class="error" id="playground-error">{escape(error)}</p>' if error else "")
        + _answer("URL verified" if verify_only else "Signed URL", signed, answer)
        + revoke
        + '<h2>Sign, then verify</h2><form method="post" action="/playground/sign" class="stack">'
        f'{_csrf(csrf)}<label>Source <select name="source" id="source">{options}</select></label>'
        '<label>URL (path or absolute) <input type="text" name="url" id="sign-url" '
        f'value="{escape(url)}" required></label>'
        '<label>Expires in (seconds, optional) <input type="text" name="expires_in" '
        'id="expires-in" inputmode="numeric"></label>'
        '<button type="submit" id="sign">Sign and verify</button></form>'
        '<h2>Verify only</h2><form method="post" action="/playground/verify" class="stack">'
        f'{_csrf(csrf)}<label>Signed URL (paste or tamper) <input type="text" name="url" '
        f'id="verify-url" value="{escape(signed)}" required></label>'
        '<label>Host (optional: the URL\'s own) <input type="text" name="host" id="host">'
        "</label><label>Client address (optional: yours) "
        '<input type="text" name="client_ip" id="client-ip"></label>'
        '<button type="submit" id="verify">Verify</button></form>'
    )
    return layout("Playground", body, csrf=csrf)


def _answer(label: str, signed: str, answer: Answer | None) -> str:
    if answer is None:
        return ""
    sent = "\n".join(f"{name}: {value}" for name, value in answer.headers)
    signed_html = f'<p>{label}:</p><pre id="signed-url">{escape(signed)}</pre>' if signed else ""
    return (
        f'<section class="answer">{signed_html}'
        f'<p>/verify answered <strong id="verify-status">{answer.status}</strong> with '
        f'<code>X-Signature-Result: <span id="verify-result">{escape(answer.result)}</span>'
        f'</code></p><p id="verify-why">{escape(answer.explanation)}</p>'
        f"<details><summary>The request sent</summary><pre>GET {escape(answer.target)}\n"
        f"{escape(sent)}</pre></details></section>"
    )


def refused(message: str) -> str:
    return layout("Refused", f'<p class="error">{escape(message)}</p>', csrf=None)


def _csrf(token: str) -> str:
    return f'<input type="hidden" name="csrf" value="{escape(token)}">'


def _matches(count: float) -> str:
    return "no matches" if not count else f"{count:.0f} match" + ("" if count == 1 else "es")


def _ago(stamp: float | None, now: float) -> str:
    if not stamp:
        return "never (since start)"
    when = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(stamp))
    return f"{when} ({max(0, int(now - stamp))} s ago)"


def _percent(part: float, whole: float) -> str:
    return f"{100 * part / whole:.1f} %" if whole else "&ndash;"


def is_report(source: SourceSettings) -> bool:
    return source.mode is Mode.REPORT
