"""``sidecar doctor``: send one probe through the proxy and explain what the sidecar saw.

The probe is an ordinary request for ``--url`` plus a cookie naming a fresh random id
(``sidecar.runtime.probes``). The sidecar decides it like any other request and keeps a
record of it: which proxy profile it is configured for, which of that profile's headers
arrived and which did not, the path, host and method it routed on, the source and the
answer. The doctor then asks the sidecar's verify listener for that record and prints it
in words, with the fix when the headers are another profile's. Exit 0 when the sidecar saw
the headers its profile cannot decide without, 1 when it did not or never saw the probe.

Nothing of the URL's query (the signature) is printed.
"""

from __future__ import annotations

import http.client
import secrets
import urllib.parse
from typing import Any

import orjson

from sidecar.errors import UsageError
from sidecar.runtime.probes import PROBE_COOKIE, PROBE_PATH

EXIT_HEALTHY, EXIT_PROBLEM = 0, 1
# Several workers share the verify port: the record sits in whichever served the probe,
# and each new connection may reach another (1 in 65,536 to miss with 2 workers).
FETCH_ATTEMPTS = 16


def run(url: str, sidecar: str, *, host: str | None = None, timeout: float = 5.0) -> int:
    target, verify = urllib.parse.urlsplit(url), urllib.parse.urlsplit(sidecar)
    for name, parts in (("--url", target), ("--sidecar", verify)):
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise UsageError(f"{name} must be an http:// or https:// URL")
    probe_id = secrets.token_hex(16)
    shown = f"{target.scheme}://{target.netloc}{target.path or '/'}"
    print(f"probe {probe_id}: GET {shown}{' (query not shown)' if target.query else ''}")
    try:
        status, reason = _probe(target, probe_id, host, timeout)
    except OSError as error:
        print(f"the proxy did not answer: {error}")
        return EXIT_PROBLEM
    print(f"answer: {status}" + (f" (X-Signature-Result: {reason})" if reason else ""))
    try:
        record = _record(verify, probe_id, timeout)
    except OSError as error:
        print(f"the sidecar at {sidecar} did not answer: {error}")
        return EXIT_PROBLEM
    if record is None:
        _explain_unseen(status)
        return EXIT_PROBLEM
    return _explain(record)


def _connection(parts: urllib.parse.SplitResult, timeout: float) -> http.client.HTTPConnection:
    kind = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
    return kind(parts.hostname or "", parts.port, timeout=timeout)


def _probe(
    target: urllib.parse.SplitResult, probe_id: str, host: str | None, timeout: float
) -> tuple[int, str | None]:
    """Request the URL as a client would, with the probe cookie; the status and the
    sidecar's reason when the proxy passes it on."""
    connection = _connection(target, timeout)
    headers = {"Cookie": f"{PROBE_COOKIE}={probe_id}"}
    if host is not None:  # the proxy's server name, when the URL names its address
        headers["Host"] = host
    try:
        uri = (target.path or "/") + (f"?{target.query}" if target.query else "")
        connection.request("GET", uri, headers=headers)
        response = connection.getresponse()
        response.read(1 << 20)  # the image itself does not matter
        return response.status, response.getheader("X-Signature-Result")
    finally:
        connection.close()


def _record(verify: urllib.parse.SplitResult, probe_id: str, timeout: float) -> Any:
    """The sidecar's record of the probe (None: no worker has one)."""
    for _ in range(FETCH_ATTEMPTS):
        connection = _connection(verify, timeout)
        try:
            connection.request("GET", PROBE_PATH + probe_id)
            response = connection.getresponse()
            body = response.read(1 << 16)
        finally:
            connection.close()
        if response.status == 200:
            return orjson.loads(body)
        if response.status != 404:
            raise OSError(f"GET {PROBE_PATH}… answered {response.status}")
    return None


def _explain_unseen(status: int) -> None:
    print("the sidecar never saw this probe. Likely causes:")
    if status == 500:
        print(
            "  - the proxy could not reach the sidecar, or got an answer it cannot use "
            "(nginx turns anything but 2xx/401/403 into 500)"
        )
    if 200 <= status < 300:
        print("  - the proxy's auth cache answered (an allow cached for this exact URL)")
    print("  - the proxy does not pass the client's Cookie header to the sidecar")
    print("  - --sidecar names another sidecar than the one this proxy asks")


def _explain(record: dict[str, Any]) -> int:
    proxy, missing = record["proxy"], record["missing"]
    print(f"the sidecar saw the probe. Configured proxy profile: {proxy}")
    print(f"  headers it reads:  {_names(record['read'])}")
    print(f"  headers received:  {_names(record['received'])}")
    print(f"  missing:           {_names(missing)}")
    others = [profile for profile in record["matching_profiles"] if profile != proxy]
    required_missing = [name for name in record["required"] if name in missing]
    if required_missing and others:
        print(
            f"  -> these are the headers of the '{others[0]}' profile: set [server] "
            f'proxy = "{others[0]}", or send the {proxy} profile\'s headers'
        )
    elif required_missing:
        print(
            f"  -> without {_names(required_missing)} the sidecar cannot know the original "
            "request: every request is denied (check the proxy's auth configuration)"
        )
    print(
        f"  routed on:         path {_or_dash(record['path'])}, host "
        f"{_or_dash(record['host'])}, method {_or_dash(record['method'])}"
    )
    print(f"  source:            {record['source']}")
    print(f"  answer:            {record['status']} {record['result']} ({record['decision']})")
    return EXIT_PROBLEM if required_missing else EXIT_HEALTHY


def _names(names: list[str]) -> str:
    return ", ".join(names) if names else "none"


def _or_dash(value: str | None) -> str:
    return "-" if value is None else value
