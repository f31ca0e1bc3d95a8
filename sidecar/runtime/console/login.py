"""Logging in and out of the console.

A login presents an admin key, compared in constant time against the configured hashes.
Wrong keys are throttled per client address (``LOGIN_THROTTLE``, per worker process):
past the limit every attempt from that address is refused with 429 and ``Retry-After``
before any key is compared, and logged without the key. A logout ends the session in
every worker (``revoked.py``): the cookie a browser holds is not the only copy.
"""

from __future__ import annotations

import math
import time

from aiohttp import web

from sidecar.runtime.console import pages
from sidecar.runtime.console.revoked import REVOKED
from sidecar.runtime.console.session import COOKIE_NAME, key_label, match_api_key, session_id
from sidecar.runtime.console.views import ADMIN_INDEX, SESSIONS, admin_hashes, html
from sidecar.runtime.state import STATE
from sidecar.runtime.throttle import Throttle, ThrottlePolicy, client_key

# Ten wrong keys from one address within ten minutes lock it out for ten minutes: an
# operator who mistypes gets many tries, a guesser about 1,400 a day.
LOGIN_THROTTLE = ThrottlePolicy(failures=10, window=600.0, lockout=600.0)
WRONG_KEYS = web.AppKey("console_wrong_keys", Throttle)
NOT_ENDED = ("Logged out of this browser, but the session could not be ended on the server: "
             "it lasts until it expires.")  # fmt: skip


def add_routes(app: web.Application) -> None:
    app[WRONG_KEYS] = Throttle(LOGIN_THROTTLE)
    app.router.add_get("/login", login_form)
    app.router.add_post("/login", log_in)
    app.router.add_post("/logout", log_out)


async def login_form(request: web.Request) -> web.Response:
    return html(pages.login(error=False))


async def log_in(request: web.Request) -> web.Response:
    state, wrong_keys = request.app[STATE], request.app[WRONG_KEYS]
    address, remote, now = client_key(request.remote), request.remote or "", time.monotonic()
    wait = wrong_keys.retry_after(address, now)
    if wait > 0:  # refused before the form is read: a right key now proves nothing
        retry = max(1, math.ceil(wait))
        state.log.limited("console_login", result="throttled", remote=remote, retry_after=retry)
        response = html(pages.login(error=False, retry_after=retry), 429)
        response.headers["Retry-After"] = str(retry)
        return response
    form = await request.post()
    presented = form.get("api_key")
    hashes = admin_hashes(request)
    index = match_api_key(presented if isinstance(presented, str) else "", hashes)
    if index is None:
        wrong_keys.failed(address, now)
        # What a client can trigger at will shares the denial log budget.
        state.log.limited("console_login", result="wrong_key", remote=remote)
        return html(pages.login(error=True), 401)
    state.log.event("console_login", result="ok", admin_key=key_label(hashes[index]),
                    admin_key_index=index, remote=remote)  # fmt: skip
    sessions = request.app[SESSIONS]
    response = web.HTTPSeeOther("/sources")
    response.set_cookie(
        COOKIE_NAME,
        sessions.issue(index, hashes[index], time.time()),
        max_age=sessions.lifetime,
        path="/",
        httponly=True,
        samesite="Strict",
    )
    raise response


async def log_out(request: web.Request) -> web.Response:
    """End the session (the guard checked it and its CSRF token) in every worker."""
    state = request.app[STATE]
    session = session_id(request.cookies.get(COOKIE_NAME, ""))
    fields = {"admin_key": key_label(admin_hashes(request)[request[ADMIN_INDEX]]),
              "remote": request.remote or ""}  # fmt: skip
    if session is None:  # never: the guard accepted this cookie; refuse rather than guess
        return html(pages.refused("Log in first."), 401)
    try:
        request.app[REVOKED].revoke(session, time.time())
    except OSError as error:
        state.log.event("console_logout", result="not_recorded", error=str(error), **fields)
        response = html(pages.refused(NOT_ENDED), 500)
        response.del_cookie(COOKIE_NAME, path="/")
        return response
    state.log.event("console_logout", result="ok", **fields)
    redirect = web.HTTPSeeOther("/login")
    redirect.del_cookie(COOKIE_NAME, path="/")
    raise redirect
