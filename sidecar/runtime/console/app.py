"""The console's aiohttp application: security headers, login, sessions, CSRF, static files.

Every response carries a strict Content-Security-Policy, ``no-store`` and
``no-referrer``. Every page but the login form needs a valid session; every POST but
the login needs the session's CSRF token, and every POST a same-origin request (the
``Origin`` and ``Sec-Fetch-Site`` a browser sends; the cookie is ``SameSite=Strict`` too).
A wrong key sees the login form again, and nothing else.
"""

from __future__ import annotations

import os
import time
from collections.abc import Awaitable, Callable
from importlib import resources

from aiohttp import web

from sidecar.runtime.console import pages, views
from sidecar.runtime.console.session import (
    COOKIE_NAME,
    SESSION_SECRET_ENV,
    Sessions,
    key_label,
    match_api_key,
    new_secret_hex,
    session_secret,
)
from sidecar.runtime.console.views import SESSIONS, admin_hashes, html
from sidecar.runtime.state import STATE, State, without_banner

MAX_BODY = 64 * 1024  # the largest form is the playground's URL
CSP = "; ".join((
    "default-src 'none'", "script-src 'self'", "style-src 'self'", "img-src 'self'",
    "connect-src 'self'", "form-action 'self'", "frame-ancestors 'none'", "base-uri 'none'",
))  # fmt: skip
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
}
_OPEN = frozenset({"/login", "/static/console.css", "/static/console.js"})
_STATIC = {"console.css": "text/css", "console.js": "text/javascript"}
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def share_session_secret() -> None:
    """In the worker supervisor, before it starts the workers: one session secret for
    all of them (they inherit the environment), so any worker accepts any session."""
    os.environ.setdefault(SESSION_SECRET_ENV, new_secret_hex())


def create_console_app(state: State) -> web.Application:
    app = web.Application(client_max_size=MAX_BODY, middlewares=[_guard])
    app.on_response_prepare.append(without_banner)
    app.on_response_prepare.append(_security_headers)
    app[STATE] = state
    app[SESSIONS] = Sessions(session_secret(os.environ))
    files = resources.files("sidecar.runtime.console") / "static"
    for name, content_type in _STATIC.items():
        app.router.add_get(f"/static/{name}", _static((files / name).read_bytes(), content_type))
    app.router.add_get("/", _home)
    app.router.add_get("/login", _login_form)
    app.router.add_post("/login", _login)
    app.router.add_post("/logout", _logout)
    views.add_routes(app)
    return app


async def _security_headers(request: web.Request, response: web.StreamResponse) -> None:
    response.headers.update(SECURITY_HEADERS)


@web.middleware
async def _guard(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Sessions and CSRF for every route but the open ones."""
    if request.method == "POST" and not _same_origin(request):
        return html(pages.refused("Cross-origin request refused."), 403)
    if request.path in _OPEN:
        return await handler(request)
    sessions = request.app[SESSIONS]
    cookie = request.cookies.get(COOKIE_NAME, "")
    index = sessions.check(cookie, admin_hashes(request), time.time())
    if index is None:
        if request.path.endswith(".json"):
            return web.json_response({"error": "log in"}, status=401)
        if request.method == "GET":
            raise web.HTTPSeeOther("/login")
        return html(pages.refused("Log in first."), 401)
    if request.method == "POST":
        form = await request.post()
        token = form.get("csrf")
        if not sessions.check_csrf(cookie, token if isinstance(token, str) else None):
            return html(pages.refused("Missing or wrong CSRF token: reload the page."), 403)
    request[views.ADMIN_INDEX] = index
    request[views.CSRF] = sessions.csrf_token(cookie)
    return await handler(request)


def _same_origin(request: web.Request) -> bool:
    """A POST from this console's own pages. Browsers send ``Sec-Fetch-Site`` (which a
    page cannot forge) and ``Origin``; under ``Referrer-Policy: no-referrer`` that
    Origin is ``null``, so ``null`` passes only with ``Sec-Fetch-Site: same-origin``.
    Non-browser clients send neither and still need the CSRF token."""
    site = request.headers.get("Sec-Fetch-Site")
    if site is not None and site != "same-origin":
        return False
    origin = request.headers.get("Origin")
    if origin is None:
        return True
    if origin == "null":
        return site == "same-origin"
    return origin.partition("://")[2] == request.host


def _static(body: bytes, content_type: str) -> Handler:
    async def serve(request: web.Request) -> web.Response:
        return web.Response(body=body, content_type=content_type)

    return serve


async def _home(request: web.Request) -> web.Response:
    raise web.HTTPSeeOther("/sources")


async def _login_form(request: web.Request) -> web.Response:
    return html(pages.login(error=False))


async def _login(request: web.Request) -> web.Response:
    state = request.app[STATE]
    form = await request.post()
    presented = form.get("api_key")
    hashes = admin_hashes(request)
    index = match_api_key(presented if isinstance(presented, str) else "", hashes)
    remote = request.remote or ""
    if index is None:
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


async def _logout(request: web.Request) -> web.Response:
    response = web.HTTPSeeOther("/login")
    response.del_cookie(COOKIE_NAME, path="/")
    raise response
