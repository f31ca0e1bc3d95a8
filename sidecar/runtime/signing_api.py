"""The signing API (Pixelstack-compatible), on its own listener.

``GET /public/team/{teamId}/signUrl?url=…[&expiresIn=S]`` with ``X-Api-Key`` →
``200 {"signedUrl": "…"}``; ``POST /public/team/{teamId}/signUrls`` with a JSON list →
``200 {"signedUrls": […]}``. Errors are ``{"error": "…"}``: 401 missing or wrong key,
404 unknown team, 400 a URL that cannot be signed for the team's source.
API keys are compared in constant time against their SHA-256, never stored in clear.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from typing import Any

import orjson
from aiohttp import web

from sidecar.errors import SigningError
from sidecar.policy.decide import NO_SOURCE
from sidecar.policy.settings import TeamSettings
from sidecar.policy.signing import API_KEY_HEADER, MAX_BATCH, sign_url
from sidecar.runtime.state import STATE, State

MAX_BODY = 256 * 1024
_JSON = "application/json"


class _ApiError(Exception):
    def __init__(self, status: int, result: str, message: str) -> None:
        super().__init__(message)
        self.status, self.result, self.message = status, result, message


def create_signing_app(state: State) -> web.Application:
    app = web.Application(client_max_size=MAX_BODY)
    app[STATE] = state
    app.router.add_get("/public/team/{team_id}/signUrl", sign_one)
    app.router.add_post("/public/team/{team_id}/signUrls", sign_batch)
    return app


async def sign_one(request: web.Request) -> web.Response:
    return await _answer(request, _sign_one)


async def sign_batch(request: web.Request) -> web.Response:
    return await _answer(request, _sign_batch)


async def _sign_one(request: web.Request, team: TeamSettings) -> dict[str, Any]:
    url = request.query.get("url")
    if not url:
        raise _ApiError(400, "bad_request", "the 'url' query parameter is required")
    return {"signedUrl": _sign(request, team, url)}


async def _sign_batch(request: web.Request, team: TeamSettings) -> dict[str, Any]:
    try:
        urls = orjson.loads(await request.read())
    except (orjson.JSONDecodeError, web.HTTPRequestEntityTooLarge):
        raise _ApiError(400, "bad_request", "the body must be a JSON list of URLs") from None
    if not isinstance(urls, list) or not all(isinstance(url, str) for url in urls):
        raise _ApiError(400, "bad_request", "the body must be a JSON list of URLs")
    if not 1 <= len(urls) <= MAX_BATCH:
        raise _ApiError(400, "bad_request", f"a batch holds 1 to {MAX_BATCH} URLs")
    return {"signedUrls": [_sign(request, team, url, index) for index, url in enumerate(urls)]}


def _sign(request: web.Request, team: TeamSettings, url: str, index: int | None = None) -> str:
    decider = request.app[STATE].decider
    try:
        return sign_url(
            decider.settings,
            team.source,
            url,
            now=time.time(),
            expires_in=_expires_in(request),
            require_absolute=True,
            router=decider.router,  # compiled once per config, not once per URL
        )
    except SigningError as error:
        where = f"url {index}: " if index is not None else ""
        raise _ApiError(400, "bad_request", f"{where}{error}") from None


def _expires_in(request: web.Request) -> int | None:
    text = request.query.get("expiresIn")
    if text is None:
        return None
    if not text.isdigit() or len(text) > 9:
        raise _ApiError(400, "bad_request", "expiresIn must be a whole number of seconds")
    return int(text)


async def _answer(request: web.Request, handler: Any) -> web.Response:
    state = request.app[STATE]
    team = state.decider.settings.team(request.match_info["team_id"])
    try:
        if team is None:
            raise _ApiError(404, "unknown_team", "unknown team")
        if not _authenticated(team, request.headers.get(API_KEY_HEADER)):
            raise _ApiError(401, "unauthorized", "missing or wrong API key")
        body = await handler(request, team)
    except _ApiError as refusal:
        state.metrics.signing_requests.labels(team.id if team else NO_SOURCE, refusal.result).inc()
        return _json(refusal.status, {"error": refusal.message})
    state.metrics.signing_requests.labels(team.id, "ok").inc()
    return _json(200, body)


def _authenticated(team: TeamSettings, api_key: str | None) -> bool:
    if not api_key:
        return False
    presented = hashlib.sha256(api_key.encode(errors="surrogateescape")).digest()
    # Every configured hash is compared, without early exit.
    matches = [hmac.compare_digest(presented, expected) for expected in team.api_key_sha256]
    return any(matches)


def _json(status: int, body: dict[str, Any]) -> web.Response:
    return web.Response(
        status=status,
        body=orjson.dumps(body),
        content_type=_JSON,
        headers={"Cache-Control": "no-store"},
    )
