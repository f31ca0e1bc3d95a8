"""``POST /public/team/{teamId}/revoke``: a team takes back a grant of its own source, or
every grant under a path prefix inside it (docs/signing.md).

The body is one JSON object, read strictly: ``{"url": "…"}`` with optional ``"cookies"``
(a cookie grant, as its ``Cookie`` header) and ``"client_ip"`` (for a grant bound to an
address), or ``{"prefix": "/…/"}``; either with an optional ``"until"`` (unix seconds).
Any other member, a wrong type or both ``url`` and ``prefix`` is a 400. The answer is the
record as ``sidecar revocations`` lists it: a grant is named by its digest, never by its
signature.

Without ``[state]`` the answer is 409: the config, not the moment, refuses, so a retry
cannot succeed. A store that does not take the write is a 503 with ``Retry-After``: it
is the moment, and the same call succeeds once the store answers.
"""

from __future__ import annotations

import functools
import ipaddress
import math
import time
from typing import Any, Final

import orjson

from sidecar.errors import RevokeError
from sidecar.policy.revocations import Revocation
from sidecar.policy.revoking import revoke_prefix, revoke_url
from sidecar.policy.settings import Settings, TeamSettings
from sidecar.runtime import revoke_write
from sidecar.runtime.state import State

_URL_FIELDS: Final = frozenset({"url", "cookies", "client_ip", "until"})
_PREFIX_FIELDS: Final = frozenset({"prefix", "until"})
_MAX_TEXT: Final = 16 * 1024  # characters of a URL or a cookie header


class RevokeRefusedError(Exception):
    def __init__(self, status: int, result: str, message: str, retry: bool = False) -> None:
        super().__init__(message)
        self.status, self.result, self.message = status, result, message
        self.headers = {"Retry-After": "1"} if retry else {}


async def revoke_for_team(state: State, team: TeamSettings, body: bytes) -> dict[str, Any]:
    """The revocation stored, as JSON; ``RevokeRefusedError`` with the status to answer."""
    if revoke_write.open_store(state) is None:
        raise RevokeRefusedError(409, "no_state", revoke_write.NO_STATE)
    try:
        # Off the verify loop: routing builds a table of every source (milliseconds at
        # 10,000) and the URL's signature is verified.
        job = functools.partial(team_revocation, state.decider.settings, team.source, body)
        record = await state.off_loop(job, time.time())
        await revoke_write.write(state, record, by={"team": team.id})
    except RevokeError as error:
        raise RevokeRefusedError(400, "bad_request", str(error)) from None
    except revoke_write.NoStateError as error:  # [state] gone between the check and the write
        raise RevokeRefusedError(409, "no_state", str(error)) from None
    except revoke_write.StoreDownError as error:
        raise RevokeRefusedError(503, "unavailable", str(error), retry=True) from None
    return dict(orjson.loads(record.to_json()))


def team_revocation(settings: Settings, source: str, body: bytes, now: float) -> Revocation:
    """What ``body`` asks to revoke within ``source``; ``RevokeError`` saying why not."""
    fields = _object(body)
    until = _until(fields.get("until"))
    if "url" in fields:
        if not fields.keys() <= _URL_FIELDS:
            raise RevokeError(f"a URL revocation takes only {_named(_URL_FIELDS)}")
        return revoke_url(settings, _text(fields, "url"), now=now, until=until,
                          cookies=_optional_text(fields, "cookies"),
                          client_ip=_address(fields.get("client_ip")),
                          only_source=source)  # fmt: skip
    if "prefix" in fields:
        if not fields.keys() <= _PREFIX_FIELDS:
            raise RevokeError(f"a prefix revocation takes only {_named(_PREFIX_FIELDS)}")
        return revoke_prefix(settings, source, _text(fields, "prefix"), now=now, until=until)
    raise RevokeError('the body must name a "url" or a "prefix"')


def _object(body: bytes) -> dict[str, Any]:
    try:
        fields = orjson.loads(body)
    except orjson.JSONDecodeError:
        fields = None
    if not isinstance(fields, dict):
        raise RevokeError('the body must be a JSON object: {"url": "…"} or {"prefix": "…"}')
    return fields


def _text(fields: dict[str, Any], name: str) -> str:
    value = fields[name]
    if not isinstance(value, str) or not 0 < len(value) <= _MAX_TEXT:
        raise RevokeError(f'"{name}" must be a non-empty string')
    return value


def _optional_text(fields: dict[str, Any], name: str) -> str | None:
    return _text(fields, name) if fields.get(name) is not None else None


def _address(value: object) -> str | None:
    if value is None:
        return None
    try:
        return str(ipaddress.ip_address(value if isinstance(value, str) else ""))
    except ValueError:
        raise RevokeError('"client_ip" must be an IPv4 or IPv6 address') from None


def _until(value: object) -> float | None:
    """Unix seconds, a JSON number (``true`` is not one, though Python calls it an int)."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise RevokeError('"until" must be a time in unix seconds')
    return float(value)


def _named(fields: frozenset[str]) -> str:
    return ", ".join(f'"{name}"' for name in sorted(fields))
