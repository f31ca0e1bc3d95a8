"""The console's pages, once the session and CSRF checks have passed (``app._guard``).

Numbers come from the process's counts (every worker's, summed), read off the verify
loop. The config is only read: the pages show it as the running process loaded it (after
any reload).
"""

from __future__ import annotations

import asyncio
import ipaddress
import os
import time
from dataclasses import dataclass, field

import orjson
from aiohttp import web

from sidecar.policy.settings import SourceSettings
from sidecar.runtime.console import keys, live_charts, numbers, pages, revoke_html
from sidecar.runtime.console.history import INTERVAL
from sidecar.runtime.console.playground import PlaygroundError, ask_verify, sign_for
from sidecar.runtime.console.sampler import HISTORY
from sidecar.runtime.console.session import Sessions, key_label
from sidecar.runtime.metrics import Metrics, tracks_keys
from sidecar.runtime.revoke_write import open_store
from sidecar.runtime.state import STATE

SESSIONS = web.AppKey("console_sessions", Sessions)
# Set on the request by the guard: which admin key's session it is, and its CSRF token.
ADMIN_INDEX = web.RequestKey("console_admin_index", int)
CSRF = web.RequestKey("console_csrf", str)
MAX_ROWS = 200  # sources listed at once (configs hold thousands: filter to find one)
_MAX_EXPIRES_IN = 366 * 86400
_CACHED_CHARTS = 16  # filters drawn per sample (the charts change once per sample)


def add_routes(app: web.Application) -> None:
    app[RECENT] = _Recent()
    app[CHARTS] = {}
    router = app.router
    router.add_get("/sources", sources)
    router.add_get("/live", live)
    router.add_get("/live.json", live_json)
    router.add_get("/live/charts", live_charts_fragment)
    router.add_get("/report", report)
    router.add_post("/reveal", reveal)
    router.add_get("/playground", playground)
    router.add_post("/playground/sign", playground_sign)
    router.add_post("/playground/verify", playground_verify)


def html(text: str, status: int = 200) -> web.Response:
    return web.Response(text=text, status=status, content_type="text/html", charset="utf-8")


def admin_hashes(request: web.Request) -> tuple[bytes, ...]:
    """The admin key hashes of the config in force (none when a reload removed [admin])."""
    admin = request.app[STATE].decider.settings.admin
    return admin.api_key_sha256 if admin is not None else ()


@dataclass
class _Recent:
    """The last snapshot of this process, shared by every viewer for ``FRESH_FOR``: with
    thousands of active sources (and, with workers, their files to merge) a read still
    costs milliseconds of a core."""

    at: float = float("-inf")
    snapshot: numbers.Snapshot | None = None
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


RECENT = web.AppKey("console_recent", _Recent)
CHARTS = web.AppKey("console_charts", dict[tuple[int, str], str])
FRESH_FOR = 1.0  # seconds; the live page polls every 2


async def _snapshot(request: web.Request) -> numbers.Snapshot:
    state, recent = request.app[STATE], request.app[RECENT]
    async with recent.lock:  # viewers arriving together wait for one read
        if recent.snapshot is None or time.monotonic() - recent.at >= FRESH_FOR:
            # Thousands of series (and with workers, files to read): off the verify loop.
            recent.snapshot = await state.off_loop(_read, state.metrics)
            recent.at = time.monotonic()
        return recent.snapshot


def _read(metrics: Metrics) -> numbers.Snapshot:
    return numbers.read(metrics.snapshot())


async def sources(request: web.Request) -> web.Response:
    settings = request.app[STATE].decider.settings
    query = request.query.get("q", "").strip()[:200]
    needle = query.lower()
    matching = [s for s in settings.sources if needle in s.name.lower() or needle in s.path_prefix]
    shown = matching[:MAX_ROWS]
    # Above 100 sources, a single key's matches are its source's ok decisions (metrics.py).
    untracked = frozenset(s.name for s in shown if not tracks_keys(settings, s))
    snapshot = await _snapshot(request)
    history = request.app[HISTORY]
    windows = {source.name: history.window(source.name) for source in shown}
    state = request.app[STATE]
    page = pages.sources(shown, len(matching), query, snapshot, request[CSRF],
                         untracked=untracked, windows=windows, revocations=state.revocations,
                         revocable=open_store(state) is not None)  # fmt: skip
    return html(page)


async def live(request: web.Request) -> web.Response:
    query = _chart_query(request)
    charts = await _charts(request, query)
    return html(pages.live(await _snapshot(request), request[CSRF], os.getpid(), charts, query))


async def live_charts_fragment(request: web.Request) -> web.Response:
    """The charts alone: the live page's script swaps them in, without a reload, and asks
    again just after the next sample (``X-Next-Sample-In``, seconds)."""
    response = html(await _charts(request, _chart_query(request)))
    response.headers["X-Next-Sample-In"] = f"{INTERVAL - time.time() % INTERVAL:.2f}"
    return response


def _chart_query(request: web.Request) -> str:
    return request.query.get("source", "").strip()[:200]


async def _charts(request: web.Request, query: str) -> str:
    """Drawn in the offload pool, once per sample and filter (every viewer shares it)."""
    history, cache = request.app[HISTORY], request.app[CHARTS]
    key = (history.taken, query)
    if key not in cache:
        text = await request.app[STATE].off_loop(live_charts.fragment, history, query)
        if len(cache) >= _CACHED_CHARTS or any(taken != key[0] for taken, _ in cache):
            cache.clear()  # an earlier sample's are stale
        cache[key] = text
    return cache[key]


async def live_json(request: web.Request) -> web.Response:
    body = {"pid": os.getpid(), "at": time.time(), "sources": (await _snapshot(request)).as_json()}
    return web.Response(body=orjson.dumps(body), content_type="application/json")


async def report(request: web.Request) -> web.Response:
    settings = request.app[STATE].decider.settings
    report_sources = [source for source in settings.sources if pages.is_report(source)]
    return html(pages.report(report_sources, await _snapshot(request), request[CSRF]))


async def reveal(request: web.Request) -> web.Response:
    """Show one key on an explicit click, and log who asked (never the key itself)."""
    state = request.app[STATE]
    form = await request.post()
    source_name, key_id = str(form.get("source", "")), str(form.get("key", ""))
    source = state.decider.settings.source(source_name)
    shown = keys.reveal(source, key_id) if source is not None else None
    if source is None or shown is None:
        return html(pages.refused("No such source or key."), 404)
    kind, text = shown
    index = request[ADMIN_INDEX]
    state.log.event(
        "console_reveal",
        admin_key=key_label(admin_hashes(request)[index]),
        admin_key_index=index,
        remote=request.remote or "",
        source=source.name,
        key=key_id,
        kind=kind,
    )
    return html(pages.reveal(source.name, key_id, kind, text, request[CSRF]))


def _signable(request: web.Request) -> list[SourceSettings]:
    settings = request.app[STATE].decider.settings
    return [source for source in settings.sources if source.signatures is not None]


async def playground(request: web.Request) -> web.Response:
    return html(pages.playground(_signable(request), request[CSRF]))


async def playground_sign(request: web.Request) -> web.Response:
    state = request.app[STATE]
    form = await request.post()
    source, url = str(form.get("source", "")), str(form.get("url", "")).strip()
    try:
        signed = await sign_for(state, source, url, _expires_in(str(form.get("expires_in", ""))))
        client_ip = _client_ip(request, "")
        answer = await ask_verify(state, signed, host=None, client_ip=client_ip)
    except PlaygroundError as error:
        return html(pages.playground(_signable(request), request[CSRF], chosen=source, url=url,
                                     error=str(error)))  # fmt: skip
    revoke = _revoke_button(request, answer.result, signed, None, client_ip)
    return html(pages.playground(_signable(request), request[CSRF], chosen=source, url=url,
                                 signed=signed, answer=answer, revoke=revoke))  # fmt: skip


async def playground_verify(request: web.Request) -> web.Response:
    state = request.app[STATE]
    form = await request.post()
    url = str(form.get("url", "")).strip()
    host = str(form.get("host", "")).strip() or None
    try:
        client_ip = _client_ip(request, str(form.get("client_ip", "")))
        answer = await ask_verify(state, url, host=host, client_ip=client_ip)
    except PlaygroundError as error:
        return html(pages.playground(_signable(request), request[CSRF], signed=url,
                                     error=str(error)))  # fmt: skip
    revoke = _revoke_button(request, answer.result, url, host, client_ip)
    return html(pages.playground(_signable(request), request[CSRF], signed=url, answer=answer,
                                 verify_only=True, revoke=revoke))  # fmt: skip


def _revoke_button(
    request: web.Request, result: str, url: str, host: str | None, client_ip: str
) -> str:
    """ "Revoke this grant" under a URL that verified ``ok`` (nothing else has a grant)."""
    if result != "ok":
        return ""
    enabled = open_store(request.app[STATE]) is not None
    return revoke_html.grant_button(request[CSRF], url, host, client_ip, enabled=enabled)


def _expires_in(text: str) -> int | None:
    text = text.strip()
    if not text:
        return None
    if not text.isascii() or not text.isdigit() or not 1 <= int(text) <= _MAX_EXPIRES_IN:
        raise PlaygroundError("expires in must be a whole number of seconds (1 .. 366 days)")
    return int(text)


def _client_ip(request: web.Request, given: str) -> str:
    """The address to verify as: the one typed, or the operator's own."""
    text = given.strip() or request.remote or "127.0.0.1"
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        raise PlaygroundError("client address must be an IPv4 or IPv6 address") from None
