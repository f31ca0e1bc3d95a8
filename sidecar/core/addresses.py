"""Client addresses, in one reading: an IPv4 client of a dual-stack socket arrives as
``::ffff:a.b.c.d`` and is compared as the IPv4 address it is. Pure: no I/O."""

from __future__ import annotations

import functools
import ipaddress

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


@functools.lru_cache(maxsize=1024)
def client_address(text: str) -> IPAddress | None:
    """The address ``text`` names (IPv4-mapped IPv6 read as IPv4), or None (the same few
    clients ask again and again: remembered)."""
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def client_within(client_ip: str | None, network: IPNetwork) -> bool:
    """Whether the client address lies in ``network``; no or an unreadable address never
    does (fail closed)."""
    address = client_address(client_ip) if client_ip else None
    return address is not None and address.version == network.version and address in network
