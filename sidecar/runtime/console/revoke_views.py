"""The console's Revoke buttons answered (``revoke_html.py`` draws them): the grant a
URL carries, as the playground verified it, or every grant of one key after a
confirmation. The revocation is written to the store this process holds open
(``runtime/revoke_write.py``), logged with the admin key that asked, and the answer page
names its id (``sidecar unrevoke -c FILE ID`` takes it back).

The session and CSRF checks of every console POST have passed (``app._guard``).
"""

from __future__ import annotations

import functools
import ipaddress
import time
from html import escape

from aiohttp import web

from sidecar.errors import RevokeError
from sidecar.policy.revocations import Revocation
from sidecar.policy.revoking import revoke_key, revoke_url
from sidecar.runtime import revoke_write
from sidecar.runtime.console import pages
from sidecar.runtime.console.session import key_label
from sidecar.runtime.console.views import ADMIN_INDEX, CSRF, admin_hashes, html
from sidecar.runtime.state import STATE

_BACK = '<p><a href="/playground">Playground</a> · <a href="/sources">Sources</a></p>'


def add_routes(app: web.Application) -> None:
    app.router.add_post("/revoke/grant", revoke_grant)
    app.router.add_post("/revoke/key", revoke_key_of_source)


async def revoke_grant(request: web.Request) -> web.Response:
    form = await request.post()
    url, host = str(form.get("url", "")).strip(), str(form.get("host", "")).strip() or None
    client_ip = _address(str(form.get("client_ip", "")))
    state = request.app[STATE]
    # Off the verify loop: routing builds a table of every source, and the URL is verified.
    job = functools.partial(revoke_url, state.decider.settings, url, now=time.time(),
                            client_ip=client_ip, host=host)  # fmt: skip
    try:
        record = await state.off_loop(job)
    except RevokeError as error:
        return _refused(request, str(error), 400)
    return await _write(request, record)


async def revoke_key_of_source(request: web.Request) -> web.Response:
    """A first POST asks to confirm (a key's every grant is a large thing to take back);
    the confirmation's POST revokes."""
    form = await request.post()
    source, key_id = str(form.get("source", "")), str(form.get("key", ""))
    settings = request.app[STATE].decider.settings
    try:
        record = revoke_key(settings, source, key_id, now=time.time())
    except RevokeError as error:
        return _refused(request, str(error), 404)
    if form.get("confirm") != "yes":
        return html(_confirm_key(source, key_id, request[CSRF]))
    return await _write(request, record)


async def _write(request: web.Request, record: Revocation) -> web.Response:
    state, index = request.app[STATE], request[ADMIN_INDEX]
    label = key_label(admin_hashes(request)[index])
    by: dict[str, str | int] = {"admin_key": label, "admin_key_index": index,
                                "remote": request.remote or ""}  # fmt: skip
    try:
        await revoke_write.write(state, record, by=by)
    except revoke_write.NoStateError as error:
        return _refused(request, str(error), 409)
    except revoke_write.StoreDownError as error:
        return _refused(request, str(error), 503)
    return html(_done(record, request[CSRF]))


def _address(text: str) -> str | None:
    try:
        return str(ipaddress.ip_address(text.strip()))
    except ValueError:
        return None  # a grant bound to an address then does not verify: refused, says why


def _refused(request: web.Request, message: str, status: int) -> web.Response:
    body = f'<p class="error" id="revoke-error">{escape(message)}</p>{_BACK}'
    return html(pages.layout("Not revoked", body, csrf=request[CSRF]), status)


def _confirm_key(source: str, key_id: str, csrf: str) -> str:
    body = (
        f"<p>Revoke every grant signed with key <code>{escape(key_id)}</code> of source "
        f"<code>{escape(source)}</code>? Every URL and cookie it signed is then denied "
        "<code>revoked</code> by every sidecar sharing the store, until the revocation is "
        "removed (<code>sidecar unrevoke</code>). Rotating to a new key is the lasting fix.</p>"
        '<form method="post" action="/revoke/key" class="inline">'
        f'<input type="hidden" name="csrf" value="{escape(csrf)}">'
        f'<input type="hidden" name="source" value="{escape(source)}">'
        f'<input type="hidden" name="key" value="{escape(key_id)}">'
        '<input type="hidden" name="confirm" value="yes">'
        '<button type="submit" id="confirm-revoke-key">Revoke every grant of this key</button>'
        '</form> <a href="/sources">Cancel</a>'
    )
    return pages.layout("Revoke a key", body, csrf=csrf)


def _done(record: Revocation, csrf: str) -> str:
    until = ("until it is removed" if record.until is None else "until "
             + time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(record.until)))  # fmt: skip
    body = (
        f'<p id="revoked">Revoked: <code id="revocation-id">{escape(record.id)}</code> '
        f"({escape(record.kind.value)} of source <code>{escape(record.source)}</code>, "
        f"{escape(until)}). Every sidecar sharing the store denies it within a second.</p>"
        f"<p>To take it back: <code>sidecar unrevoke -c FILE {escape(record.id)}</code>. An allow "
        "already in nginx's auth cache lasts until that entry expires.</p>" + _BACK
    )
    return pages.layout("Revoked", body, csrf=csrf)
