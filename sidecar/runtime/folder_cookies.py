"""The cookies a ``folder_grant`` allow answers (docs/folder-grants.md), as header lines.

Signing one costs an RSA signature for ``cloudfront`` (about a millisecond), too much for
the verify loop: a grant is signed in the offload pool, and the answer waits for it as a
counted use waits for the store (the connection stops reading meanwhile, so pipelined
answers keep their order). Every player of one signed URL asks for the same (source,
folder, expiry): its cookies are signed once and kept, in a bounded table.

nginx before 1.23 reads only the first of several upstream headers of one name, so each
cookie has a header of its own: ``Set-Cookie``, then ``X-Set-Cookie-2``, ``X-Set-Cookie-3``
(CloudFront's three), each forwarded by the shipped snippet.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Coroutine
from typing import Any, Final

from sidecar.errors import SchemeError, SigningError
from sidecar.policy.decide import Decision
from sidecar.policy.folder_grants import grant_cookies
from sidecar.runtime.state import State
from sidecar.schemes.base import SourceScheme

MAX_KEPT: Final = 4096  # grants kept; the table is emptied when full (they are cheap to redo)
_HEADERS: Final = ("Set-Cookie", "X-Set-Cookie-2", "X-Set-Cookie-3")
_Key = tuple[str, str, int, str | None]  # source, folder, expiry, the address it is bound to


def header_lines(cookies: tuple[str, ...]) -> bytes:
    """One header line per ``Set-Cookie`` value (each checked by ``set_cookie``: visible
    ASCII, no CR or LF)."""
    if len(cookies) > len(_HEADERS):
        raise ValueError("more grant cookies than the snippet forwards")
    lines = zip(_HEADERS, cookies, strict=False)
    return "".join(f"{name}: {value}\r\n" for name, value in lines).encode()


class FolderCookies:
    def __init__(self, state: State) -> None:
        self._state = state
        # (source, folder, expiry, address) -> (the scheme that signed them, their lines):
        # a reload that rotates the source's keys builds a new scheme, and signs anew.
        self._kept: dict[_Key, tuple[SourceScheme, bytes]] = {}

    def answer(
        self, decision: Decision, build: Callable[[bytes], bytes]
    ) -> bytes | Coroutine[Any, Any, bytes]:
        """``build(header lines)`` now when the grant's cookies are kept, else a coroutine
        that signs them off the loop first."""
        source, grant = decision.source, decision.folder
        assert source is not None and source.signatures is not None and grant is not None
        key = (source.name, grant.folder, grant.expires, grant.client_ip)
        kept = self._kept.get(key)
        if kept is not None and kept[0] is source.signatures:
            return build(kept[1])
        return self._signed(key, source.signatures, decision, build)

    async def _signed(
        self,
        key: _Key,
        signatures: SourceScheme,
        decision: Decision,
        build: Callable[[bytes], bytes],
    ) -> bytes:
        assert decision.folder is not None
        try:
            cookies = await self._state.off_loop(
                grant_cookies, signatures, decision.folder, time.time()
            )
        except (SchemeError, SigningError) as error:
            # A folder the scheme's cookie cannot name (akamai's ACL takes no '%'): the
            # URL's own allow stands, and its players get no grant.
            self._state.log.event("folder_grant_refused", source=key[0],
                                  folder=key[1], problem=str(error))  # fmt: skip
            cookies = ()
        lines = header_lines(cookies)
        if len(self._kept) >= MAX_KEPT:
            self._kept.clear()
        self._kept[key] = (signatures, lines)
        return build(lines)
