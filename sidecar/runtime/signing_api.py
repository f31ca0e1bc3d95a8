"""The signing API (Pixelstack-compatible), on its own listener.

``GET /public/team/{teamId}/signUrl?url=…[&expiresIn=S][&cookies=true]`` with ``X-Api-Key``
→ ``200 {"signedUrl": "…"}`` (with ``cookies=true``, also ``"cookies": [Set-Cookie values]``,
for sources whose scheme signs cookies); ``POST /public/team/{teamId}/signUrls`` with a JSON list →
``200 {"signedUrls": […]}``; ``POST /public/team/{teamId}/revoke`` takes a grant of the
team's source back (``signing_revoke.py``). Errors are ``{"error": "…"}``: 401 missing or wrong key,
404 unknown team, 400 a URL that cannot be signed for the team's source, a lifetime
beyond the cap or a repeated query parameter, 429 (with ``Retry-After``) when an API key
calls faster than ``[signing] rate_limit`` or an address sent too many wrong keys, 503
when too many signing calls are already in flight (signing runs off the verify loop,
bounded). API keys are compared in constant time against their SHA-256, never stored in
clear.

Every URL the API signs for an expiring scheme expires within the cap: the source's
``max_ttl``, else ``API_MAX_TTL`` (a week). An application holding an API key must not be
able to mint a URL that outlives any rotation plan (``expiresIn=999999999`` is 31 years).
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import math
import re
import time
from dataclasses import dataclass
from typing import Any

import orjson
from aiohttp import web

from sidecar import schemes
from sidecar.errors import SigningError
from sidecar.policy.decide import NO_SOURCE, Decider
from sidecar.policy.settings import SourceSettings, TeamSettings
from sidecar.policy.signing import API_KEY_HEADER, MAX_BATCH, sign
from sidecar.runtime.signing_revoke import RevokeRefusedError, revoke_for_team
from sidecar.runtime.state import STATE, State, healthz, without_banner
from sidecar.runtime.throttle import Throttle, ThrottlePolicy, client_key
from sidecar.schemes.base import Grant, Signed

MAX_BODY = 256 * 1024
MAX_PENDING = 16  # signing calls waiting for or using the offload pool, per process
API_MAX_TTL = 7 * 86400  # seconds: the longest lifetime signed for a source without max_ttl
# Wrong API keys from one client address (per worker process). An application with a
# stale key retries far less often than this; a guesser gets 20 tries a minute.
SIGNING_THROTTLE = ThrottlePolicy(failures=20, window=60.0, lockout=60.0)
_SECONDS = re.compile(r"[0-9]{1,9}")


@dataclass
class _InFlight:
    """Signing calls of this process waiting for or using the offload pool."""

    count: int = 0


class RateLimiter:
    """A token bucket per API key (by its SHA-256): ``rate`` calls a second on average, up
    to ``BURST_SECONDS`` seconds' worth at once. Only authenticated keys get a bucket, so
    the table is bounded by the keys in the config, never by what callers invent."""

    BURST_SECONDS = 2.0
    MAX_BUCKETS = 4096  # keys removed by reloads linger; past this, start afresh

    def __init__(self) -> None:
        self._buckets: dict[bytes, tuple[float, float]] = {}  # key hash: (tokens, when)

    def wait(self, key: bytes, rate: int, now: float) -> float:
        """0 when the call may go ahead (its token taken), else seconds until one is due."""
        if rate <= 0:
            return 0.0  # rate_limit = 0: no limit
        burst = rate * self.BURST_SECONDS
        tokens, then = self._buckets.get(key, (burst, now))
        tokens = min(burst, tokens + (now - then) * rate)
        if len(self._buckets) >= self.MAX_BUCKETS and key not in self._buckets:
            self._buckets.clear()
        if tokens < 1.0:
            self._buckets[key] = (tokens, now)
            return (1.0 - tokens) / rate
        self._buckets[key] = (tokens - 1.0, now)
        return 0.0


IN_FLIGHT = web.AppKey("signing_in_flight", _InFlight)
RATE_LIMITER = web.AppKey("signing_rate_limiter", RateLimiter)
WRONG_KEYS = web.AppKey("signing_wrong_keys", Throttle)
_JSON = "application/json"


class _ApiError(Exception):
    def __init__(
        self, status: int, result: str, message: str, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status, self.result, self.message = status, result, message
        self.headers = headers or {}


def create_signing_app(state: State) -> web.Application:
    app = web.Application(client_max_size=MAX_BODY)
    app.on_response_prepare.append(without_banner)
    app[STATE] = state
    app[IN_FLIGHT] = _InFlight()
    app[RATE_LIMITER] = RateLimiter()
    app[WRONG_KEYS] = Throttle(SIGNING_THROTTLE)
    app.router.add_get("/healthz", healthz)  # for the orchestrator's probe of this listener
    app.router.add_get("/public/team/{team_id}/signUrl", sign_one)
    app.router.add_post("/public/team/{team_id}/signUrls", sign_batch)
    app.router.add_post("/public/team/{team_id}/revoke", revoke)
    return app


async def sign_one(request: web.Request) -> web.Response:
    return await _answer(request, _sign_one)


async def sign_batch(request: web.Request) -> web.Response:
    return await _answer(request, _sign_batch)


async def revoke(request: web.Request) -> web.Response:
    return await _answer(request, _revoke)


async def _revoke(request: web.Request, team: TeamSettings) -> dict[str, Any]:
    try:
        return await revoke_for_team(request.app[STATE], team, await request.read())
    except web.HTTPRequestEntityTooLarge:
        raise _ApiError(400, "bad_request", "the body is too large") from None
    except RevokeRefusedError as refusal:
        raise _ApiError(refusal.status, refusal.result, refusal.message,
                        refusal.headers) from None  # fmt: skip


async def _sign_one(request: web.Request, team: TeamSettings) -> dict[str, Any]:
    url = request.query.get("url")
    if not url:
        raise _ApiError(400, "bad_request", "the 'url' query parameter is required")
    cookies = _cookies(request)
    signed = (await _sign_off_loop(request, team, [url], single=True, cookies=cookies))[0]
    if cookies:  # a cookie grant: the Set-Cookie values the application hands on
        return {"signedUrl": signed.url, "cookies": list(signed.cookies)}
    return {"signedUrl": signed.url}


async def _sign_batch(request: web.Request, team: TeamSettings) -> dict[str, Any]:
    try:
        urls = orjson.loads(await request.read())
    except (orjson.JSONDecodeError, web.HTTPRequestEntityTooLarge):
        raise _ApiError(400, "bad_request", "the body must be a JSON list of URLs") from None
    if not isinstance(urls, list) or not all(isinstance(url, str) for url in urls):
        raise _ApiError(400, "bad_request", "the body must be a JSON list of URLs")
    if not 1 <= len(urls) <= MAX_BATCH:
        raise _ApiError(400, "bad_request", f"a batch holds 1 to {MAX_BATCH} URLs")
    signed = await _sign_off_loop(request, team, urls, single=False)
    return {"signedUrls": [one.url for one in signed]}


async def _sign_off_loop(
    request: web.Request,
    team: TeamSettings,
    urls: list[str],
    *,
    single: bool,
    cookies: bool = False,
) -> list[Signed]:
    """Sign in the offload pool: an RSA-4096 batch must not hold the verify loop. At most
    ``MAX_PENDING`` signing calls wait or run at once; more are refused (503, retry)."""
    state = request.app[STATE]
    expires_in = api_lifetime(state.decider.settings.source(team.source), _expires_in(request))
    in_flight = request.app[IN_FLIGHT]
    if in_flight.count >= MAX_PENDING:
        raise _ApiError(503, "busy", "too many signing requests at once: retry shortly")
    in_flight.count += 1
    try:
        decider = state.decider  # the config of this moment, for every URL of the batch
        job = functools.partial(
            _sign_all, decider, team, urls, expires_in=expires_in, single=single, cookies=cookies
        )
        return await state.off_loop(job)
    finally:
        in_flight.count -= 1


def _sign_all(
    decider: Decider,
    team: TeamSettings,
    urls: list[str],
    *,
    expires_in: int | None,
    single: bool,
    cookies: bool,
) -> list[Signed]:
    now = time.time()
    grant = Grant(cookies=cookies)
    signed = []
    for index, url in enumerate(urls):
        try:
            signed.append(
                sign(
                    decider.settings,
                    team.source,
                    url,
                    grant,
                    now=now,
                    expires_in=expires_in,
                    require_absolute=True,
                    router=decider.router,  # compiled once per config, not once per URL
                )
            )
        except SigningError as error:
            where = "" if single else f"url {index}: "
            raise _ApiError(400, "bad_request", f"{where}{error}") from None
    return signed


def api_lifetime(source: SourceSettings | None, asked: int | None) -> int | None:
    """The lifetime to sign with: ``asked``, else the source's ``default_ttl``, else the
    cap, which is the source's ``max_ttl``, else ``API_MAX_TTL``. Beyond the cap is a 400,
    never silently shortened: the caller must learn its URL would not live that long."""
    scheme = schemes.get(source.scheme) if source is not None else None
    if source is None or scheme is None or not scheme.expiring:
        return asked  # sign() refuses an unknown source, and an expiry thumbor cannot carry
    cap = source.max_ttl or API_MAX_TTL
    if asked is not None and asked > cap:
        raise _ApiError(400, "bad_request", f"expiresIn must not exceed {cap} seconds")
    lifetime = asked if asked is not None else source.default_ttl or cap
    if lifetime > cap:
        raise _ApiError(400, "bad_request", f"the source's default_ttl ({lifetime} s) exceeds "
                        f"the signing API's cap of {cap} seconds: pass expiresIn")  # fmt: skip
    return lifetime


def _refuse_repeated_parameters(request: web.Request) -> None:
    """One value per query parameter: ``cookies=true&cookies=false`` must not be read as
    whichever one a parser prefers."""
    seen: set[str] = set()
    for name, _ in request.query.items():  # iterating the keys would yield each name once
        if name in seen:
            raise _ApiError(400, "bad_request", f"the query parameter '{name}' is repeated")
        seen.add(name)


def _cookies(request: web.Request) -> bool:
    text = request.query.get("cookies")
    if text not in (None, "true"):
        raise _ApiError(400, "bad_request", "cookies must be 'true' when given")
    return text == "true"


def _expires_in(request: web.Request) -> int | None:
    text = request.query.get("expiresIn")
    if text is None:
        return None
    # ASCII digits only: str.isdigit() also accepts "²" or Arabic-Indic digits.
    if not _SECONDS.fullmatch(text):
        raise _ApiError(400, "bad_request", "expiresIn must be a whole number of seconds")
    return int(text)


async def _answer(request: web.Request, handler: Any) -> web.Response:
    state = request.app[STATE]
    team = state.decider.settings.team(request.match_info["team_id"])
    try:
        if team is None:
            raise _ApiError(404, "unknown_team", "unknown team")
        key = _checked_key(request, team)
        _within_rate(request, key)
        _refuse_repeated_parameters(request)
        body = await handler(request, team)
    except _ApiError as refusal:
        state.metrics.signing_requests.labels(team.id if team else NO_SOURCE, refusal.result).inc()
        return _json(refusal.status, {"error": refusal.message}, refusal.headers)
    state.metrics.signing_requests.labels(team.id, "ok").inc()
    return _json(200, body)


def _checked_key(request: web.Request, team: TeamSettings) -> bytes:
    """The SHA-256 of the team's key the call presents. Refused first (429), whatever key
    it carries, when its address sent too many wrong keys; a wrong key counts toward that."""
    wrong_keys, now = request.app[WRONG_KEYS], time.monotonic()
    address = client_key(request.remote)
    wait = wrong_keys.retry_after(address, now)
    if wait > 0:
        retry = max(1, math.ceil(wait))
        request.app[STATE].log.limited("signing_throttled", team=team.id,
                                       remote=request.remote or "", retry_after=retry)  # fmt: skip
        raise _ApiError(429, "rate_limited", "too many wrong API keys from this address: "
                        "retry later", {"Retry-After": str(retry)})  # fmt: skip
    presented = request.headers.getall(API_KEY_HEADER, [])
    key = _authenticated(team, presented[0] if len(presented) == 1 else None)
    if key is None:
        if any(presented):  # a key was guessed (a missing one guesses nothing)
            wrong_keys.failed(address, now)
        raise _ApiError(401, "unauthorized", "missing or wrong API key")
    return key


def _authenticated(team: TeamSettings, api_key: str | None) -> bytes | None:
    """The SHA-256 of the presented key when it is one of the team's, else None."""
    if not api_key:
        return None
    presented = hashlib.sha256(api_key.encode(errors="surrogateescape")).digest()
    # Every configured hash is compared, without early exit.
    matches = [hmac.compare_digest(presented, expected) for expected in team.api_key_sha256]
    return presented if any(matches) else None


def _within_rate(request: web.Request, key: bytes) -> None:
    """Refuse (429) a key calling faster than ``[signing] rate_limit`` (per process)."""
    rate = request.app[STATE].decider.settings.signing_rate_limit
    wait = request.app[RATE_LIMITER].wait(key, rate, time.monotonic())
    if wait > 0:
        retry = str(max(1, math.ceil(wait)))  # whole seconds (RFC 9110 Retry-After)
        raise _ApiError(429, "rate_limited", "too many requests for this API key: retry later",
                        {"Retry-After": retry})  # fmt: skip


def _json(status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(
        status=status,
        body=orjson.dumps(body),
        content_type=_JSON,
        headers={"Cache-Control": "no-store", **(headers or {})},
    )
