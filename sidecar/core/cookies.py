"""The grant cookies of one request, read strictly from the ``Cookie`` header the proxy
passed (RFC 6265 §4.2.1: ``name=value`` pairs separated by ``"; "``).

Only the names a scheme asks for are looked at: other cookies (analytics, sessions) are
the client's business and never make a request fail. For the names asked for there is one
spelling: a name given twice is ``non_canonical`` (which one would the proxy's cache have
seen?), a quoted value or one with characters RFC 6265 does not allow in a cookie value is
``malformed``, and a header over 64 KB (more than the verify listener reads of a whole
request) is ``non_canonical``. A scheme reads cookies only for a request whose URL carries
no grant: a URL grant is decided by the URL, whatever the cookies say.

Pure: no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from email.utils import formatdate

from sidecar.core.verdict import Reason
from sidecar.errors import SchemeError

MAX_COOKIE_HEADER = 65536
# RFC 6265 cookie-octet: visible ASCII but for DQUOTE, comma, semicolon and backslash.
_COOKIE_VALUE = re.compile(r"[\x21\x23-\x2b\x2d-\x3a\x3c-\x5b\x5d-\x7e]*")
# RFC 6265 path-value: printable ASCII but ';' (and no space).
_COOKIE_PATH = re.compile(r"/[\x21-\x3a\x3c-\x7e]*")


def grant_cookies(header: str | None, names: Collection[str]) -> dict[str, str] | Reason:
    """The values of the cookies called ``names`` (absent ones left out), or the reason the
    header cannot be read for them."""
    if not header:
        return {}
    if len(header) > MAX_COOKIE_HEADER:
        return Reason.NON_CANONICAL
    found: dict[str, str] = {}
    for pair in header.split(";"):
        name, equals, value = pair.strip(" \t").partition("=")
        if name not in names:
            continue
        if name in found:
            return Reason.NON_CANONICAL
        if not equals or not _COOKIE_VALUE.fullmatch(value):
            return Reason.MALFORMED
        found[name] = value
    return found


def set_cookie(name: str, value: str, *, path: str, expires: int) -> str:
    """A ``Set-Cookie`` value for a grant: scoped to ``path``, only over HTTPS, out of
    scripts' reach, not sent on cross-site subresource requests, gone at ``expires`` (an
    HTTP-date: signing is pure, with no clock to count a ``Max-Age`` from). ``SchemeError``
    for a value or path a cookie cannot carry."""
    if not value or not _COOKIE_VALUE.fullmatch(value):
        raise SchemeError(f"cookie {name} would carry characters a cookie cannot")
    if not _COOKIE_PATH.fullmatch(path):
        raise SchemeError("a cookie's Path must be printable ASCII without ';'")
    ends = formatdate(expires, usegmt=True)
    return f"{name}={value}; Path={path}; Expires={ends}; Secure; HttpOnly; SameSite=Lax"
