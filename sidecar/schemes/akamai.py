"""Scheme ``akamai``: Akamai EdgeAuth 2.0 tokens (Token Authorization), in a query
parameter or the cookie of the same name.

``ip~st~exp~acl~id~data~hmac`` fields in one parameter (``token_name``), ACL tokens
(globs) or URL tokens, the hmac over the token's head (then the URL, the salt). The
format, settings, the reference signer (``akamai-edgeauth``) and answers:
docs/schemes/akamai.md and docs/cookies.md.
"""

from __future__ import annotations

import ipaddress
import re
import secrets
from dataclasses import dataclass
from typing import NamedTuple
from urllib.parse import quote_plus, unquote_plus

from sidecar.core import digests
from sidecar.core.canonical import QueryParam
from sidecar.core.cookies import grant_cookies, set_cookie
from sidecar.core.encodings import parse_epoch
from sidecar.core.verdict import Reason, Verdict, allow, deny
from sidecar.errors import SchemeError
from sidecar.schemes.base import NewKey, Scheme, Signed, SignRequest, SourceSpec, VerifyRequest
from sidecar.schemes.cloudfront_policy import matches
from sidecar.schemes.keyring import KeyringSource, secret_keyring
from sidecar.schemes.settings import CookieSettings, setting

NAME = "akamai"
IP, START, EXPIRES, ACL, SESSION_ID, DATA, HMAC = "ip", "st", "exp", "acl", "id", "data", "hmac"
_RANK = {name: rank for rank, name in enumerate((IP, START, EXPIRES, ACL, SESSION_ID, DATA, HMAC))}
DIGEST_SIZES = {"sha256": 32, "sha1": 20, "md5": 16}
KEY_SIZE = 32  # what ``new_key`` makes (64 hex digits)
# Shorter HMAC keys are guessable offline from one token.
MIN_KEY_BYTES = 16
_HEX_KEY = re.compile(r"(?:[0-9a-f]{2})+|(?:[0-9A-F]{2})+")
_LOWER_HEX = re.compile(r"[0-9a-f]+")
_TOKEN_NAME = re.compile(r"[A-Za-z0-9_.-]{1,64}")
# Delimiters that cannot occur in an address, an epoch, a path or an escaped value, and
# that travel unencoded in a query value.
DELIMITERS = "~!,;|^$'()@"
# What an ACL we sign may hold: it travels raw in the query, so printable ASCII without
# the characters a query value cannot carry as themselves.
_ACL_TEXT = re.compile(r"[!-~]+")
_NOT_IN_ACL = frozenset(" #%&\\")
_WILDCARDS = frozenset("*?")
_GRANT_PARTS = frozenset({"not_before", "client_ip", "resource", "prefix"})
Address = ipaddress.IPv4Address | ipaddress.IPv6Address


def escape(text: str) -> str:
    """``escape_early``: ``quote_plus`` with its escapes lowercased, as EdgeAuth writes it."""
    return re.sub(r"%[0-9A-F]{2}", lambda found: found.group(0).lower(), quote_plus(text))


class Token(NamedTuple):
    """A token's fields by name (raw text), and the text its hmac covers."""

    fields: dict[str, str]
    head: str  # everything before the delimiter that precedes ``hmac=``


def parse_token(text: str, delimiter: str) -> Token | None:
    """The fields in EdgeAuth's order, each once, non-empty, ``exp`` and ``hmac`` present
    (``hmac`` last); None for anything else."""
    fields: dict[str, str] = {}
    last = -1
    for part in text.split(delimiter):
        name, equals, value = part.partition("=")
        rank = _RANK.get(name, -1)
        if not equals or not value or rank <= last:
            return None  # unknown, empty, repeated or out of order
        fields[name] = value
        last = rank
    if last != _RANK[HMAC] or EXPIRES not in fields:
        return None
    head = text[: len(text) - len(HMAC) - 1 - len(fields[HMAC]) - len(delimiter)]
    return Token(fields, head)


class _Times(NamedTuple):
    start: int | None
    expires: int


def _times(fields: dict[str, str]) -> _Times | None:
    """``st`` and ``exp``: positive epochs in their one spelling, ``exp`` after ``st``."""
    expires = parse_epoch(fields[EXPIRES])
    start = parse_epoch(fields[START]) if START in fields else None
    if not expires or (START in fields and not start):
        return None  # EdgeAuth never writes 0: it means "absent" to the signer
    if start is not None and expires <= start:
        return None
    return _Times(start, expires)


# --- settings and keys ------------------------------------------------------------------------


def _algorithm_problem(value: str) -> str | None:
    return None if value in DIGEST_SIZES else "must be sha256, sha1 or md5"


def _token_name_problem(value: str) -> str | None:
    return None if _TOKEN_NAME.fullmatch(value) else "must be 1-64 of A-Z a-z 0-9 _ . -"


def _delimiter_problem(value: str) -> str | None:
    return None if len(value) == 1 and value in DELIMITERS else f"must be one of {DELIMITERS}"


def _salt_problem(value: str) -> str | None:
    # Never echo the value: a salt is a secret.
    return None if value else "must not be empty (leave it out for no salt)"


@dataclass(frozen=True, slots=True)
class AkamaiSettings(CookieSettings):
    algorithm: str = setting("sha256", check=_algorithm_problem)
    token_name: str = setting("__token__", check=_token_name_problem)
    field_delimiter: str = setting("~", check=_delimiter_problem)
    acl_delimiter: str = setting("!", check=_delimiter_problem)
    escape_early: bool = False
    salt: str | None = setting(None, kind=str, check=_salt_problem, secret=True)


@dataclass(frozen=True, slots=True)
class AkamaiSource(KeyringSource):
    settings: AkamaiSettings
    path_prefix: str

    # --- verify ---------------------------------------------------------------------------

    def verify(self, request: VerifyRequest) -> Verdict:
        found = self._token_param(request.uri.params)
        if found is Reason.MISSING and self.settings.accept_cookies:
            return self._verify_cookie(request)
        if isinstance(found, Reason):
            return deny(found)
        return self._verify_token(request, found.value, cookie=False)

    def _verify_cookie(self, request: VerifyRequest) -> Verdict:
        found = grant_cookies(request.cookies, (self.settings.token_name,))
        if isinstance(found, Reason):
            return deny(found)
        value = found.get(self.settings.token_name)
        if value is None:
            return deny(Reason.MISSING)
        return self._verify_token(request, value, cookie=True)

    def _verify_token(self, request: VerifyRequest, text: str, *, cookie: bool) -> Verdict:
        token = parse_token(text, self.settings.field_delimiter)
        if token is None:
            return deny(Reason.MALFORMED)
        fields = token.fields
        times = _times(fields)
        acls = self._acls(fields.get(ACL))
        address = self._address(fields.get(IP))
        presented = self._presented(fields[HMAC])
        if times is None or acls == () or isinstance(address, Reason) or presented is None:
            return deny(Reason.MALFORMED)
        # A URL token signs the path as the URL carries it (EdgeAuth's signers are given
        # the URL the token goes in, and the edge hashes what was sent): one raw spelling,
        # never the decoded text, which for a name holding "%41" would be another file.
        message = self._message(token.head, None if ACL in fields else request.uri.raw_path)
        matched = self.keyring.match(presented, lambda key: self._digest(key, message))
        if matched is None:
            return deny(Reason.INVALID)
        # Only once the hmac holds: a forgery learns nothing, and only a genuine token
        # (bounded by the URI's length) costs the glob matching.
        if acls is not None and not any(matches(acl, request.uri.path) for acl in acls):
            return deny(Reason.INVALID)
        # Every glob stays within this source, in the query as in a cookie: a key shared
        # with another source must not let that source's "/*" token open these files.
        if acls is not None and not all(map(self._in_source, acls)):
            return deny(Reason.INVALID)
        return _conditions(request, matched, times, address, cookie=cookie, grant=presented)

    def _in_source(self, acl: str) -> bool:
        """Whether a glob covers only paths of this source: it starts with the source's
        folder (segment boundaries, as routing), written out without wildcards."""
        scope = self.path_prefix.rstrip("/") + "/"
        return acl.startswith(scope) and not _WILDCARDS.intersection(scope)

    def _token_param(self, params: tuple[QueryParam, ...]) -> QueryParam | Reason:
        found = None
        for param in params:  # one pass: this is the hot path
            if param.name == self.settings.token_name:
                if found is not None:
                    return Reason.NON_CANONICAL
                found = param
        if found is None:
            return Reason.MISSING
        # An encoded spelling of the name (%5F_token__) is a second spelling.
        return found if found.raw_name == self.settings.token_name else Reason.MALFORMED

    def _acls(self, text: str | None) -> tuple[str, ...] | None:
        """The ACL's globs (``()`` when one is empty), None for a URL token."""
        if text is None:
            return None
        globs = tuple(text.split(self.settings.acl_delimiter))
        return () if "" in globs else globs

    def _address(self, text: str | None) -> Address | Reason | None:
        """The ``ip`` field's address; None when absent, ``malformed`` when it is not its
        one spelling (``str(ip_address(…))``, escaped with ``escape_early``)."""
        if text is None:
            return None
        plain = unquote_plus(text) if self.settings.escape_early else text
        try:
            address = ipaddress.ip_address(plain)
        except ValueError:
            return Reason.MALFORMED
        return address if self._ip_text(address) == text else Reason.MALFORMED

    def _ip_text(self, address: Address) -> str:
        return escape(str(address)) if self.settings.escape_early else str(address)

    def _presented(self, text: str) -> bytes | None:
        """The hmac: lowercase hex (EdgeAuth's ``hexdigest``) of the exact digest length."""
        if len(text) != 2 * DIGEST_SIZES[self.settings.algorithm] or not _LOWER_HEX.fullmatch(text):
            return None
        return bytes.fromhex(text)

    def _message(self, head: str, url: str | None) -> bytes:
        """What the hmac covers: the token's head, the raw path of a URL token, the salt."""
        parts = [head]
        if url is not None:
            parts.append("url=" + (escape(url) if self.settings.escape_early else url))
        if self.settings.salt:
            parts.append("salt=" + self.settings.salt)
        return self.settings.field_delimiter.join(parts).encode()

    def _digest(self, key: bytes, message: bytes) -> bytes:
        return digests.hmac_digest(key, message, self.settings.algorithm)

    # --- sign -----------------------------------------------------------------------------

    def sign(self, request: SignRequest) -> Signed:
        grant = request.grant
        grant.refuse_unexpressible(NAME, _GRANT_PARTS | {"cookies"})
        if grant.expires is None or grant.expires <= 0:
            raise SchemeError("akamai tokens need an expiry (unix seconds)")
        if grant.not_before is not None and not 0 < grant.not_before < grant.expires:
            raise SchemeError("not_before must be positive and before the expiry")
        if request.uri.get(self.settings.token_name) is not None:
            raise SchemeError(f"URL already carries '{self.settings.token_name}'")
        prefix = grant.prefix
        if grant.cookies:
            prefix = self._cookie_prefix(grant.resource, prefix)
        acl = self._grant_acl(grant.resource, prefix, request.uri.path)
        fields = []
        if grant.client_ip is not None:
            fields.append(f"{IP}={self._ip_text(_client_address(grant.client_ip))}")
        if grant.not_before is not None:
            fields.append(f"{START}={grant.not_before}")
        fields.append(f"{EXPIRES}={grant.expires}")
        if acl is not None:
            fields.append(f"{ACL}={acl}")
        head = self.settings.field_delimiter.join(fields)
        message = self._message(head, None if acl is not None else request.uri.raw_path)
        digest = self._digest(self.keyring.newest.secret, message).hex()
        token = f"{head}{self.settings.field_delimiter}{HMAC}={digest}"
        uri = request.url.uri
        unsigned = uri.rstrip("?") if request.uri.query == "" else uri
        if grant.cookies and prefix is not None:
            cookie = set_cookie(self.settings.token_name, token, path=prefix, expires=grant.expires)
            return Signed(f"{request.url.origin}{unsigned}", (cookie,))
        separator = "&" if "?" in unsigned else "?"
        return Signed(
            f"{request.url.origin}{unsigned}{separator}{self.settings.token_name}={token}"
        )

    def _cookie_prefix(self, resource: str | None, prefix: str | None) -> str:
        """The path a cookie grant covers (and its cookie is sent for): the grant's prefix
        or the source's folder, never outside the source."""
        if resource is not None:
            raise SchemeError("a cookie grant is scoped by a prefix, not a resource")
        chosen = prefix if prefix is not None else self.path_prefix.rstrip("/") + "/"
        if not chosen.endswith("/") or not self._in_source(chosen):
            raise SchemeError(
                "a cookie prefix must be a folder (ending in '/') under the source's "
                f"path_prefix {self.path_prefix}"
            )
        return chosen

    def _grant_acl(self, resource: str | None, prefix: str | None, path: str) -> str | None:
        """The ACL glob of a grant (``prefix`` ``/books/`` → ``/books/*``), None for a URL
        token; refused when it would not travel raw or would not cover ``path``."""
        if resource is not None and prefix is not None:
            raise SchemeError("a grant has either a resource or a prefix")
        acl = resource if resource is not None else (prefix + "*" if prefix else None)
        if acl is None:
            return None
        if (
            not _ACL_TEXT.fullmatch(acl)
            or _NOT_IN_ACL.intersection(acl)
            or self.settings.field_delimiter in acl
            or self.settings.acl_delimiter in acl
        ):
            raise SchemeError(
                "an ACL must be printable ASCII without space, '#', '%', '&', '\\' "
                "or the source's delimiters"
            )
        if not matches(acl, path):
            raise SchemeError("the grant's ACL does not cover the URL being signed")
        if not self._in_source(acl):
            raise SchemeError(f"an ACL must lie under the source's path_prefix {self.path_prefix}")
        return acl


def _conditions(
    request: VerifyRequest,
    key_id: str,
    times: _Times,
    address: Address | None,
    *,
    cookie: bool,
    grant: bytes,
) -> Verdict:
    """The token's time window and address, checked once its hmac holds."""
    if request.now >= times.expires + request.clock_skew:
        return deny(Reason.EXPIRED)
    if times.start is not None and request.now + request.clock_skew < times.start:
        return deny(Reason.NOT_YET_VALID)
    if address is not None and not _same_address(request.client_ip, address):
        return deny(Reason.IP_MISMATCH)
    # An allow bound to the client's address, or won by a cookie, must never be served
    # (from the auth cache, keyed by the URI alone) to another request.
    return allow(key_id, times.expires, shareable=address is None and not cookie, grant=grant)


def _same_address(client_ip: str | None, address: Address) -> bool:
    if not client_ip:
        return False
    try:
        return ipaddress.ip_address(client_ip) == address
    except ValueError:
        return False


def _client_address(text: str) -> Address:
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        raise SchemeError(f"'{text}' is not an IP address (akamai binds one address)") from None


def _hex_key(configured: bytes) -> bytes | None:
    """The key as Akamai shows it: hex, an even number of digits in one letter case."""
    text = configured.decode("ascii", errors="replace").strip()
    return bytes.fromhex(text) if _HEX_KEY.fullmatch(text) else None


class AkamaiScheme(Scheme[AkamaiSettings]):
    name = NAME
    settings_type = AkamaiSettings
    key_types = ("akamai",)

    def build(self, spec: SourceSpec[AkamaiSettings]) -> AkamaiSource:
        settings = spec.settings
        problems = []
        if settings.field_delimiter == settings.acl_delimiter:
            problems.append("field_delimiter and acl_delimiter must differ")
        keyring = secret_keyring(
            spec.keys, min_bytes=MIN_KEY_BYTES, decode=_hex_key, problems=problems,
            rule=f"the key in hex as its secret ({2 * MIN_KEY_BYTES}+ digits, an even number,"
            " one letter case)",
        )  # fmt: skip
        # "Show Token" shows the hex key as configured, as Akamai's console does.
        return AkamaiSource(keyring, settings, spec.path_prefix)

    def new_key(self, key_type: str) -> NewKey:
        return NewKey(secret=secrets.token_bytes(KEY_SIZE).hex())


SCHEME: AkamaiScheme = AkamaiScheme()
