"""Refuse a client address that keeps presenting wrong keys: the console's login and the
signing API share this.

After ``failures`` wrong keys from one address within ``window`` seconds, every attempt
from it is refused for ``lockout`` seconds, whatever key it presents (a right key then
proves nothing to a guesser), without extending the lockout: the ``Retry-After`` it was
told holds. Other addresses are untouched. A right key does not wipe the count: behind
one NAT (or an SSH tunnel, where every operator is 127.0.0.1) a guesser would otherwise
get a fresh budget from each of its neighbours' successes. An IPv6 client is counted by
its /64, the block one subscriber usually gets: counting single addresses would hand it
2**64 budgets.

Pure: the clock is passed in. The table holds at most ``max_addresses`` entries however
many addresses try: past that the one whose last wrong key is oldest is forgotten, so a
flood of addresses costs a fixed amount of memory (and can at worst shorten the lockout
of the address it pushes out).
"""

from __future__ import annotations

import ipaddress
from collections import OrderedDict
from dataclasses import dataclass

MAX_ADDRESSES = 4096


@dataclass(frozen=True, slots=True)
class ThrottlePolicy:
    failures: int  # wrong keys allowed from one address within the window
    window: float  # seconds, from the address's first counted failure
    lockout: float  # seconds every attempt is refused once ``failures`` is reached

    def __post_init__(self) -> None:
        if self.failures < 1 or self.window <= 0 or self.lockout <= 0:
            raise ValueError("a throttle needs failures >= 1, and a window and lockout > 0")


@dataclass(slots=True)
class _Record:
    failures: int
    since: float  # when the counted failures began
    locked_until: float


class Throttle:
    """Failures and lockouts by client key (see ``client_key``), bounded in memory."""

    def __init__(self, policy: ThrottlePolicy, max_addresses: int = MAX_ADDRESSES) -> None:
        self.policy = policy
        self._max = max_addresses
        self._records: OrderedDict[str, _Record] = OrderedDict()  # oldest last failure first

    def __len__(self) -> int:
        return len(self._records)

    def retry_after(self, address: str, now: float) -> float:
        """Seconds until ``address`` may try again; 0 when it may try now."""
        record = self._records.get(address)
        if record is None:
            return 0.0
        if record.locked_until > now:
            return record.locked_until - now
        if now - record.since >= self.policy.window:
            del self._records[address]  # nothing left to remember
        return 0.0

    def failed(self, address: str, now: float) -> bool:
        """Count a wrong key from ``address``; True when it locks the address out."""
        record = self._records.pop(address, None)
        if record is None or now - record.since >= self.policy.window:
            record = _Record(0, now, 0.0)
        record.failures += 1
        locks = record.failures >= self.policy.failures
        if locks:  # the next window begins when the lockout ends
            record.failures, record.since = 0, now + self.policy.lockout
            record.locked_until = now + self.policy.lockout
        while len(self._records) >= self._max:
            self._records.popitem(last=False)
        self._records[address] = record
        return locks


def client_key(remote: str | None) -> str:
    """What the throttle counts by: an IPv4 address, or an IPv6 address's /64. An address
    that cannot be read (none, a Unix socket) shares one key: throttled, never free."""
    try:
        address = ipaddress.ip_address(remote or "")
    except ValueError:
        return ""
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return str(address)
