"""The console's Revoke buttons, as HTML fragments the pages place (``revoke_views.py``
answers them): one under a URL the playground saw verify ``ok``, one on each key of the
Sources page. Each is a POST form carrying the session's CSRF token, as every console form.

Without a store (the process started without ``[state]``) a revocation could not be
written: the playground shows the button disabled, saying why; the Sources page shows
none.
"""

from __future__ import annotations

from html import escape

NEEDS_STATE = "Revoking needs [state] in the config (and a restart to open it)."
MAX_PREFIXES_SHOWN = 5


def grant_button(csrf: str, url: str, host: str | None, client_ip: str, *, enabled: bool) -> str:
    """ "Revoke this grant" for ``url``, as the playground verified it (the host and client
    address it asked with: a grant bound to an address verifies only from it)."""
    if not enabled:
        return (
            '<p class="revoke"><button type="button" id="revoke-grant" disabled>Revoke this '
            f'grant</button> <span class="muted" id="revoke-needs-state">{escape(NEEDS_STATE)}'
            "</span></p>"
        )
    return (
        '<form method="post" action="/revoke/grant" class="inline revoke">'
        f"{_hidden('csrf', csrf)}{_hidden('url', url)}{_hidden('host', host or '')}"
        f"{_hidden('client_ip', client_ip)}"
        '<button type="submit" id="revoke-grant">Revoke this grant</button> '
        '<span class="muted">every spelling of it is then denied <code>revoked</code>, '
        "on every sidecar sharing the store</span></form>"
    )


def key_button(csrf: str, source: str, key_id: str) -> str:
    """ "Revoke every grant of this key": asks for a confirmation first (``revoke_views``)."""
    return (
        '<form method="post" action="/revoke/key" class="inline">'
        f"{_hidden('csrf', csrf)}{_hidden('source', source)}{_hidden('key', key_id)}"
        '<button type="submit" class="revoke-key">Revoke every grant of this key</button>'
        "</form>"
    )


def summary_line(grants: int, keys: int, prefixes: tuple[str, ...]) -> str | None:
    """What is revoked in a source, in words (``RevokedView.summary``); None: nothing."""
    if not (grants or keys or prefixes):
        return None
    parts = []
    if grants:
        parts.append(f"{grants} grant{'s' if grants != 1 else ''}")
    if keys:
        parts.append(f"every grant of {keys} key{'s' if keys != 1 else ''}")
    if prefixes:
        shown = ", ".join(prefixes[:MAX_PREFIXES_SHOWN])
        more = len(prefixes) - MAX_PREFIXES_SHOWN
        parts.append(f"every grant under {shown}" + (f" and {more} more" if more > 0 else ""))
    return "revoked: " + "; ".join(parts) + " (sidecar revocations lists them)"


def _hidden(name: str, value: str) -> str:
    return f'<input type="hidden" name="{name}" value="{escape(value)}">'
