"""What the sidecar saw of a probe request, kept briefly for ``sidecar doctor``.

``sidecar doctor`` requests an image through the proxy with one extra cookie,
``signed-url-probe=<32 hex digits>`` (the proxies pass the client's ``Cookie`` on for
signed cookies). A verify request carrying it is decided exactly like any other (the
record is written after the decision, which never reads this cookie, so a probe cannot
turn a denial into an allow); then the names of the headers that arrived, what the
configured profile expected, what was missing, the path, host and method routed on and
the answer are kept under the probe's id. ``GET /probe/<id>`` on the verify listener
returns that record once, as JSON.

Never kept: a header's value, the query (which holds the signature), a cookie. The id is
128 random bits chosen by the prober, so only the prober can read its record; the book
holds at most ``MAX_RECORDS`` records for ``RECORD_TTL`` seconds.
"""

from __future__ import annotations

import re
import time
from collections import OrderedDict
from typing import TYPE_CHECKING, Any

import orjson

from sidecar.policy.decide import NO_SOURCE, Decision
from sidecar.policy.proxies import EXTRACTORS, READ_HEADERS, REQUIRED_HEADERS

if TYPE_CHECKING:
    from sidecar.runtime.state import State

PROBE_COOKIE = "signed-url-probe"
PROBE_PATH = "/probe/"
MAX_RECORDS = 64
RECORD_TTL = 300.0
_ID = re.compile(r"[0-9a-f]{32}")
_COOKIE = re.compile(r"(?:^|;)\s*" + re.escape(PROBE_COOKIE) + r"=([0-9a-f]{32})\s*(?:;|$)")


class ProbeBook:
    """The last few probes' records, by id (oldest dropped first)."""

    def __init__(self) -> None:
        self._records: OrderedDict[str, tuple[float, bytes]] = OrderedDict()

    def notice(
        self, state: State, method: str, path: str, headers: dict[str, str], decision: Decision
    ) -> None:
        """Keep a record when the request carries a probe cookie (a substring test first:
        this runs for every verify request)."""
        cookie = headers.get("Cookie")
        if cookie is None or PROBE_COOKIE not in cookie:
            return
        found = _COOKIE.search(cookie)
        if found is None:
            return
        proxy = state.decider.settings.server.proxy
        record = describe(proxy, method, path, headers, decision)
        self._records[found.group(1)] = (time.monotonic(), orjson.dumps(record))
        while len(self._records) > MAX_RECORDS:
            self._records.popitem(last=False)

    def take(self, path: str) -> tuple[int, bytes]:
        """``GET /probe/<id>``: 200 and the record (removed), or 404."""
        probe_id = path[len(PROBE_PATH) :]
        entry = self._records.pop(probe_id, None) if _ID.fullmatch(probe_id) else None
        if entry is None or time.monotonic() - entry[0] > RECORD_TTL:
            return 404, b'{"error": "no such probe"}\n'
        return 200, entry[1] + b"\n"


def describe(
    proxy: str, method: str, path: str, headers: dict[str, str], decision: Decision
) -> dict[str, Any]:
    """What a probe request looked like to the sidecar: names, never values."""
    facts = EXTRACTORS[proxy](method, path, headers)
    received = list(dict.fromkeys(_name(name) for name in headers))
    present = {name.lower() for name in received}
    return {
        "proxy": proxy,
        "required": list(REQUIRED_HEADERS[proxy]),
        "read": list(READ_HEADERS[proxy]),
        "received": received,
        "missing": [name for name in READ_HEADERS[proxy] if name.lower() not in present],
        "matching_profiles": [
            profile
            for profile, required in REQUIRED_HEADERS.items()
            if required and all(name.lower() in present for name in required)
        ],
        "path": None if facts.uri is None else _text(facts.uri.partition("?")[0][:256]),
        "host": facts.host,
        "method": None if facts.method is None else _text(facts.method[:16]),
        "source": decision.source.name if decision.source else NO_SOURCE,
        "result": decision.reason.value,
        "decision": decision.outcome.value,
        "status": decision.status,
    }


def _name(name: str) -> str:
    return _text(name[:64])


def _text(value: str) -> str:
    """Request bytes may not be UTF-8 (lone surrogates): escape them for JSON."""
    return value.encode("utf-8", "backslashreplace").decode("utf-8")
