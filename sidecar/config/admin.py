"""``[admin]``: the console's listener and the SHA-256 of each admin API key (docs/console.md).

Off unless the table is present. The console never shares a port with the verify,
metrics or signing listeners: a page for operators must not answer where nginx or a
signing caller connects.
"""

from __future__ import annotations

import re

from sidecar.config.fields import Problems, Table, address
from sidecar.core.urls import config_host
from sidecar.policy.settings import Address, AdminSettings, ServerSettings

_SHA256_HEX = re.compile(r"[0-9a-fA-F]{64}")
# Addresses that listen on every interface: they collide with any host on the same port.
_ANY_HOST = frozenset({"0.0.0.0", "::", ""})  # noqa: S104 (compared, never bound here)


def parse_admin(
    raw: dict[str, object] | None,
    problems: Problems,
    *,
    server: ServerSettings | None,
    signing: Address | None,
) -> AdminSettings | None:
    """The ``[admin]`` table (None when absent), checked against the other listeners."""
    if raw is None:
        return None
    others = {"[signing] listen": signing}
    if server is not None:
        others |= {
            "[server] listen": server.listen,
            "[server] metrics_listen": server.metrics_listen,
        }
    table = Table(raw, "admin", problems)
    table.check_names({"listen", "api_key_sha256", "hosts"})
    listen = address(table, "listen", "127.0.0.1:9102")
    hosts = _hosts(table)
    hashes = table.require("api_key_sha256", list) or []
    valid = [bytes.fromhex(h) for h in hashes if isinstance(h, str) and _SHA256_HEX.fullmatch(h)]
    keys_ok = table.check(
        "api_key_sha256",
        bool(hashes) and len(valid) == len(hashes),
        "must be a non-empty list of hex SHA-256 digests (sidecar token api-key)",
    )
    for name, other in others.items():
        if listen is not None and other is not None and collides(listen, other):
            table.check("listen", False, f"must differ from {name} ({other})")
            listen = None
    if listen is None or not keys_ok or hosts is None:
        return None
    return AdminSettings(listen, tuple(valid), hosts)


def _hosts(table: Table) -> frozenset[str] | None:
    """The names the console also answers, as a proxy in front passes them on (none by
    default: only its own listen address and, for loopback, localhost)."""
    names = table.get("hosts", list, []) or []
    spelled = [config_host(name) if isinstance(name, str) else None for name in names]
    if not table.check(
        "hosts",
        None not in spelled,
        "must be a list of host names or IP addresses, without a port",
    ):
        return None
    return frozenset(name for name in spelled if name is not None)


def collides(one: Address, other: Address) -> bool:
    """Two listeners that cannot both be bound: same port, and same or wildcard host."""
    if one.port != other.port:
        return False
    return one.host == other.host or one.host in _ANY_HOST or other.host in _ANY_HOST
