"""The HTTP/1.1 requests of one verify connection, as httptools parses them.

httptools wraps llhttp, the C parser behind Node.js (uvicorn reads requests with it too).
It calls back with the request line and each header: only plain strings and one small
dict are built per request, where a framework builds a message object, a URL object and
a case-insensitive multidict. Headers the listener reads are kept under the spelling the
code asks for, so lookups are exact; the others under their name as sent (a doctor's
probe lists the names). A second line of any header the listener reads (the request's
facts, ``Cookie``, ``Host``, the body's framing) is refused: which one would count? Of
other duplicates the first wins, as a multidict's ``get``. Values lose the whitespace
around them.

Header values are read leniently (llhttp's ``lenient_headers``): a control byte nginx
passes on in a client's cookie must not turn a validly signed URL into a 500. Every value
the listener reads is checked where it is used (the canonical gate, the host parser,
the method and address checks, the grant-cookie reader), so nothing else gets through.

Bounds: a request line or header field over ``MAX_FIELD_SIZE`` is ``OVERSIZED`` (the
listener denies it: nginx lets operators raise its own limit, and a 400 would be a 500
there), except ``Cookie``: many cookies of a browser's may add up to more, and a URL's
grant must not depend on them, so it may take up to ``MAX_REQUEST_BYTES``, the bound of
a whole request still incomplete. More than ``MAX_HEADERS`` headers, a body, an upgrade,
a repeated read header and anything llhttp refuses are ``MALFORMED``. After a refusal
nothing more is read from the connection.
"""

from __future__ import annotations

from enum import Enum
from typing import Final, NamedTuple

import httptools

from sidecar.policy.proxies import READ_HEADERS, RULE_HEADERS

# nginx accepts request lines up to 8 KB; the X-Original-URI carrying one must be answered.
MAX_FIELD_SIZE: Final = 16384
MAX_HEADERS: Final = 64
# An incomplete request holds at most this much: room for a 16 KB URI and a 16 KB Cookie
# twice over. It also bounds the work of a field sent a few bytes at a time (the parser
# joins its pieces, copying what came before each time).
MAX_REQUEST_BYTES: Final = 4 * MAX_FIELD_SIZE

_READ_NAMES: Final = sorted(
    {name for names in (*READ_HEADERS.values(), *RULE_HEADERS.values()) for name in names}
    | {"Cookie", "X-Request-ID", "Content-Length", "Transfer-Encoding", "Accept-Encoding"}
)
# Each read header under its lowercase name, and under the spelling proxies send (the one
# the code uses): a proxy's header is found without lowercasing its name first.
_KNOWN_HEADERS: Final = {
    **{name.lower().encode(): name for name in _READ_NAMES},
    **{name.encode(): name for name in _READ_NAMES},
}


class Request(NamedTuple):
    method: str
    path: str  # the request target as sent (decoded as UTF-8, undecodable bytes escaped)
    headers: dict[str, str]
    keep_alive: bool


# Headers that say one thing once: a second one makes the request mean two things (which
# Host routes? which URI was asked for? how long is the body?), so it is refused.
_SINGLETONS: Final = frozenset(_KNOWN_HEADERS.values()) - {"Accept-Encoding"}
_new: Final = tuple.__new__


_SPACE: Final = 0x20
_TAB: Final = 0x09


def _text(value: bytes) -> str:
    """The bytes as UTF-8, undecodable bytes kept as lone surrogates (the checks where a
    value is used refuse them). Strict decoding first: a third cheaper, and nearly every
    value is valid UTF-8."""
    try:
        return value.decode()
    except UnicodeDecodeError:
        return value.decode("utf-8", "surrogateescape")


class Refusal(Enum):
    MALFORMED = "malformed"
    OVERSIZED = "oversized"


class RequestReader:
    """Feed it a connection's bytes; it returns the requests they completed, in order,
    ending with a ``Refusal`` when the connection must close."""

    def __init__(self) -> None:
        self._parser = httptools.HttpRequestParser(self)
        self._parser.set_dangerous_leniencies(lenient_headers=True)
        self._done: list[Request | Refusal] = []
        self._refused = False
        self.partial = False  # an incomplete request's bytes are buffered
        self.began = False  # a request began in the bytes fed last
        self._buffered = 0  # at least the bytes of the incomplete request
        # The request being parsed.
        self._url = b""
        self._headers: dict[str, str] = {}
        self._header_count = 0
        self._oversized = False
        self._ambiguous = False  # a second Host, Content-Length or Transfer-Encoding

    def feed(self, data: bytes) -> list[Request | Refusal]:
        done: list[Request | Refusal] = []
        self._done = done
        self.began = False
        if self._refused:
            return done
        try:
            self._parser.feed_data(data)
        except (httptools.HttpParserError, httptools.HttpParserUpgrade):
            self._refuse(Refusal.MALFORMED)  # an upgrade too: no protocol switch here
        if self.partial and not self._refused:
            # The parser joins a field's pieces: bound what a trickling request may hold.
            # A request that began in these bytes starts after the last complete one (no
            # request here has a body, and no field holds an empty line).
            if self.began:
                end = data.rfind(b"\r\n\r\n")
                self._buffered = len(data) - (end + 4 if end >= 0 else 0)
            else:
                self._buffered += len(data)
            if self._buffered > MAX_REQUEST_BYTES:
                self._refuse(Refusal.OVERSIZED)
        return done

    def _refuse(self, refusal: Refusal) -> None:
        if not self._refused:
            self._refused = True
            self._done.append(refusal)

    # --- httptools callbacks ------------------------------------------------------------

    def on_message_begin(self) -> None:
        self._url = b""
        self._headers = {}
        self._header_count = 0
        self._oversized = self._ambiguous = False
        self.began = self.partial = True

    def on_url(self, url: bytes) -> None:
        if self._oversized:
            return  # joined no further: pieces of a long target would be copied again and again
        self._url += url  # usually in one piece
        if len(self._url) > MAX_FIELD_SIZE:
            self._oversized = True

    def on_header(self, name: bytes, value: bytes) -> None:
        self._header_count += 1
        key = _KNOWN_HEADERS.get(name) or _KNOWN_HEADERS.get(name.lower())
        bound = MAX_REQUEST_BYTES if key == "Cookie" else MAX_FIELD_SIZE
        if len(value) > bound or len(name) > MAX_FIELD_SIZE:
            self._oversized = True
            return
        if key is None:
            key = name.decode("utf-8", "surrogateescape")
        if key in self._headers:
            self._ambiguous = self._ambiguous or key in _SINGLETONS
            return  # the first of other duplicates, as a multidict's get
        # llhttp drops the whitespace before a value, not after it (RFC 9110 §5.5: neither
        # is part of the value).
        if value and (value[-1] == _SPACE or value[-1] == _TAB):  # rare: no call on every header
            value = value.rstrip(b" \t")
        self._headers[key] = _text(value)

    def on_headers_complete(self) -> None:
        if self._oversized:
            self._refuse(Refusal.OVERSIZED)
            return
        headers = self._headers
        body = "Transfer-Encoding" in headers or headers.get("Content-Length", "0") != "0"
        refused = self._header_count > MAX_HEADERS or body or self._ambiguous
        if refused or self._parser.should_upgrade():
            self._refuse(Refusal.MALFORMED)  # nginx's subrequests carry no body

    def on_message_complete(self) -> None:
        self.partial = False
        if self._refused:
            return
        method = self._parser.get_method().decode("ascii")
        path = _text(self._url)
        keep_alive = self._parser.should_keep_alive()
        # Without the NamedTuple's Python-level __new__: one per request, every field given.
        self._done.append(_new(Request, (method, path, self._headers, keep_alive)))
