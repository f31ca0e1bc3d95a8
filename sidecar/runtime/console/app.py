"""The console's aiohttp application: security headers, host names, sessions, CSRF,
static files.

Every response carries a strict Content-Security-Policy, ``no-store`` and
``no-referrer``. Every request must name the console's own host (``hosts.py``), or gets a
421 and nothing else. Every page but the login form needs a valid session that was not
logged out; every POST but the login needs the session's CSRF token, and every POST a
same-origin request (the ``Origin`` and ``Sec-Fetch-Site`` a browser sends; the cookie is
``SameSite=Strict`` too). Logging in and out: ``login.py``.
"""

from __future__ import annotations

import atexit
import os
import shutil
import time
from collections.abc import Awaitable, Callable
from importlib import resources

from aiohttp import web

from sidecar.runtime.console import login, pages, revoke_views, views
from sidecar.runtime.console.history import History
from sidecar.runtime.console.hosts import ConsoleHosts
from sidecar.runtime.console.revoked import REVOKED, REVOKED_DIR_ENV, RevokedSessions, new_folder
from sidecar.runtime.console.sampler import HISTORY, sampling
from sidecar.runtime.console.session import (
    COOKIE_NAME,
    SESSION_SECRET_ENV,
    Sessions,
    new_secret_hex,
    session_id,
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
REFUSED_HOST = "This console does not answer for that host name.\n"
HOSTS = web.AppKey("console_hosts", ConsoleHosts)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def share_session_secret() -> None:
    """In the worker supervisor, before it starts the workers: one session secret and one
    folder of logged-out sessions for all of them (they inherit the environment), so any
    worker accepts any session and a logout on one ends it on all. The supervisor removes
    the folder when it exits."""
    os.environ.setdefault(SESSION_SECRET_ENV, new_secret_hex())
    folder = os.environ[REVOKED_DIR_ENV] = new_folder()
    atexit.register(shutil.rmtree, folder, ignore_errors=True)


def create_console_app(state: State) -> web.Application:
    admin = state.decider.settings.admin
    if admin is None:  # served only with [admin]; adding or moving it takes a restart
        raise RuntimeError("the console needs an [admin] table")
    app = web.Application(client_max_size=MAX_BODY, middlewares=[_host_guard, _guard])
    app.on_response_prepare.append(without_banner)
    app.on_response_prepare.append(_security_headers)
    app[STATE] = state
    app[HOSTS] = ConsoleHosts(admin.listen, admin.hosts)
    app[SESSIONS] = Sessions(session_secret(os.environ))
    app[REVOKED] = RevokedSessions.from_environment(os.environ)
    app.on_cleanup.append(_remove_own_folder)
    app[HISTORY] = History()
    app.cleanup_ctx.append(sampling)  # the charts' samples, off the verify loop
    files = resources.files("sidecar.runtime.console") / "static"
    for name, content_type in _STATIC.items():
        app.router.add_get(f"/static/{name}", _static((files / name).read_bytes(), content_type))
    app.router.add_get("/", _home)
    login.add_routes(app)
    views.add_routes(app)
    revoke_views.add_routes(app)
    return app


async def _remove_own_folder(app: web.Application) -> None:
    app[REVOKED].close()


async def _security_headers(request: web.Request, response: web.StreamResponse) -> None:
    response.headers.update(SECURITY_HEADERS)


@web.middleware
async def _host_guard(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Only the console's own host names, on every path (static files and login too): a
    DNS-rebinding page names its own host. 421 Misdirected Request, and nothing else."""
    hosts = request.headers.getall("Host", [])
    sockname = request.transport.get_extra_info("sockname") if request.transport else None
    local_ip = sockname[0] if isinstance(sockname, tuple) else None
    if not request.app[HOSTS].accepts(hosts[0] if len(hosts) == 1 else None, local_ip):
        return web.Response(status=421, text=REFUSED_HOST, content_type="text/plain")
    return await handler(request)


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
    if index is not None and request.app[REVOKED].is_revoked(session_id(cookie) or ""):
        index = None  # logged out, in this worker or another
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
