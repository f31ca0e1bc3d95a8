"""Which ``Host`` names the console answers: its own, never another site's.

A DNS-rebinding page (``attacker.example``, made to resolve to 127.0.0.1) is same-origin
with itself, so the browser lets it read what a loopback console answers; only the
``Host`` header it sends gives it away. The console answers the literal of its listen
address (``127.0.0.1:9102``, ``[::1]:9102``), and for a loopback or wildcard listen
``localhost``, ``127.0.0.1`` and ``[::1]`` at its port; a wildcard listen also answers the
literal of the address a connection arrived at. An IP literal cannot be rebound: a
browser sends one only for a page loaded from that address itself.

Pure: the connection's local address is passed in.
"""

from __future__ import annotations

import ipaddress

from sidecar.core.urls import host_of
from sidecar.policy.settings import Address

_WILDCARD = frozenset({"0.0.0.0", "::", ""})  # noqa: S104 (compared, never bound here)
_LOOPBACK_NAMES = ("localhost", "127.0.0.1", "[::1]")


class ConsoleHosts:
    """The ``Host`` values one console listener answers (compared without case), and
    the names ``[admin] hosts`` adds, at any port (a proxy in front has its own)."""

    def __init__(self, listen: Address, configured: frozenset[str] = frozenset()) -> None:
        self._configured = configured
        self._port = listen.port
        self._wildcard = listen.host in _WILDCARD
        names = set() if self._wildcard else {_literal(listen.host)}
        if self._wildcard or _is_loopback(listen.host):
            names.update(_LOOPBACK_NAMES)
        self._names = _with_port(names, self._port)

    def accepts(self, host: str | None, local_ip: str | None) -> bool:
        """``host`` is the request's one ``Host`` header (None: absent or repeated);
        ``local_ip`` the address the connection arrived at."""
        if host is None:
            return False
        host = host.lower()
        if host in self._names:
            return True
        if self._configured and host_of(host) in self._configured:
            return True
        if not self._wildcard or local_ip is None:
            return False
        return host in _with_port({_literal(_unmapped(local_ip))}, self._port)


def _with_port(names: set[str], port: int) -> frozenset[str]:
    """``name:port`` for each name; at port 80 the bare name too (a browser leaves out
    the default port)."""
    spelled = {f"{name}:{port}".lower() for name in names}
    if port == 80:
        spelled |= {name.lower() for name in names}
    return frozenset(spelled)


def _literal(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def _is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _unmapped(ip: str) -> str:
    """An IPv4 client of a dual-stack socket arrives at ``::ffff:a.b.c.d``; its browser
    sent ``a.b.c.d``."""
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return ip
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return str(address.ipv4_mapped)
    return str(address)
