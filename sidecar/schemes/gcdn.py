"""Scheme ``gcdn``: Google Cloud CDN signed URLs, their ``URLPrefix`` form, and the
``Cloud-CDN-Cookie`` signed cookie.

``Signature = base64url(HMAC-SHA1(key, string))`` over the full URL (so a source needs
``public_origin``) up to ``&KeyName=…``, or over ``URLPrefix=…&Expires=…&KeyName=…``. The
format, its one spelling, the cookie, and where it differs from Google's samples:
docs/schemes/gcdn.md and docs/cookies.md.
"""

from __future__ import annotations

import hmac
import re
import secrets
from dataclasses import dataclass

from sidecar.core import canonical, digests
from sidecar.core.canonical import QueryParam
from sidecar.core.cookies import grant_cookies, set_cookie
from sidecar.core.encodings import URLSAFE, parse_epoch
from sidecar.core.urls import parse_url
from sidecar.core.verdict import Reason, Verdict, allow, deny
from sidecar.errors import SchemeError, UrlError
from sidecar.schemes.base import NewKey, Scheme, Signed, SignRequest, SourceSpec, VerifyRequest
from sidecar.schemes.keyring import KeyIdRule, KeyringSource, secret_keyring
from sidecar.schemes.settings import OriginSettings

NAME = "gcdn"
URL_PREFIX, EXPIRES, KEY_NAME, SIGNATURE = "URLPrefix", "Expires", "KeyName", "Signature"
SIGNING_PARAMS = frozenset({URL_PREFIX, EXPIRES, KEY_NAME, SIGNATURE})
COOKIE = "Cloud-CDN-Cookie"
_COOKIE_ORDER = (URL_PREFIX, EXPIRES, KEY_NAME, SIGNATURE)
KEY_SIZE = 16  # "A 128-bit secret key is used for signing the URLs" (gcloud compute sign-url)
_DIGEST_SIZE = 20  # HMAC-SHA1
# Google's rule for key names; it also keeps KeyName free of anything needing encoding.
_KEY_NAME = KeyIdRule(re.compile(r"[A-Za-z0-9_-]{1,63}"), "a KeyName is 1-63 of A-Z a-z 0-9 _ -")
b64encode = URLSAFE.encode
b64decode = URLSAFE.decode  # strict: exact padding, zero unused bits, '-' and '_' only


def signature(key: bytes, string: bytes) -> bytes:
    return digests.hmac_digest(key, string, "sha1")


@dataclass(frozen=True, slots=True)
class _Presented:
    """The signing parameters of one request, in their one place: the last three (four)."""

    expires: QueryParam
    key_name: QueryParam
    signature: QueryParam
    url_prefix: QueryParam | None


@dataclass(frozen=True, slots=True)
class GcdnSource(KeyringSource):
    settings: OriginSettings
    path_prefix: str

    # --- verify ---------------------------------------------------------------------------

    def verify(self, request: VerifyRequest) -> Verdict:
        if self.settings.accept_cookies and not any(
            p.name in SIGNING_PARAMS for p in request.uri.params
        ):
            return self._verify_cookie(request)
        return self._verify_url(request)

    def _verify_url(self, request: VerifyRequest) -> Verdict:
        uri = request.uri
        found = _presented(uri.params)
        if isinstance(found, Reason):
            return deny(found)
        presented = b64decode(found.signature.value)
        expires = parse_epoch(found.expires.value)
        if presented is None or len(presented) != _DIGEST_SIZE or expires is None:
            return deny(Reason.MALFORMED)
        prefix = _decoded_prefix(found.url_prefix) if found.url_prefix is not None else None
        if found.url_prefix is not None and prefix is None:
            return deny(Reason.MALFORMED)
        key = self.keyring.get(found.key_name.value)
        if key is None:
            return deny(Reason.UNKNOWN_KEY)
        end = found.signature.start - 1  # the '&' before Signature
        if found.url_prefix is None:
            string = self.settings.public_origin + uri.raw[:end]
        else:
            string = uri.raw[found.url_prefix.start : end]
        if not hmac.compare_digest(signature(key.secret, string.encode()), presented):
            return deny(Reason.INVALID)
        # A genuine prefix grants only URLs of this source that start with it.
        if prefix is not None and not self._grants(prefix, self.settings.public_origin + uri.raw):
            return deny(Reason.INVALID)
        if request.now >= expires + request.clock_skew:
            return deny(Reason.EXPIRED)
        return allow(key.id, expires, shareable=True, grant=presented)

    def _verify_cookie(self, request: VerifyRequest) -> Verdict:
        found = grant_cookies(request.cookies, (COOKIE,))
        if isinstance(found, Reason):
            return deny(found)
        value = found.get(COOKIE)
        if value is None:
            return deny(Reason.MISSING)
        fields = _cookie_fields(value)
        if fields is None:
            return deny(Reason.MALFORMED)
        encoded_prefix, expires_text, key_name, signature_text = fields
        presented = b64decode(signature_text)
        expires = parse_epoch(expires_text)
        prefix = _decoded(encoded_prefix)
        if presented is None or len(presented) != _DIGEST_SIZE or expires is None:
            return deny(Reason.MALFORMED)
        if prefix is None:
            return deny(Reason.MALFORMED)
        key = self.keyring.get(key_name)
        if key is None:
            return deny(Reason.UNKNOWN_KEY)
        string = value[: len(value) - len(signature_text) - len(SIGNATURE) - 2]
        if not hmac.compare_digest(signature(key.secret, string.encode()), presented):
            return deny(Reason.INVALID)
        # A genuine cookie grants only URLs of this source under its prefix.
        if not self._grants(prefix, self.settings.public_origin + request.uri.raw):
            return deny(Reason.INVALID)
        if request.now >= expires + request.clock_skew:
            return deny(Reason.EXPIRED)
        # The auth cache is keyed by the URI alone: it must never answer for a cookie.
        return allow(key.id, expires, shareable=False, grant=presented)

    def _grants(self, prefix: str, url: str) -> bool:
        return self.prefix_problem(prefix) is None and url.startswith(prefix)

    def prefix_problem(self, prefix: str) -> str | None:
        """What keeps ``prefix`` from being a URL prefix of this source (None: nothing)."""
        try:
            parsed = parse_url(prefix, require_absolute=True)
        except UrlError as error:
            return str(error)
        origin = self.settings.public_origin
        if parsed.origin != origin:
            return f"URL prefix must start with the source's public_origin {origin}"
        if "?" in parsed.uri:
            return "URL prefix must not carry a query"
        uri = canonical.parse(parsed.uri)
        if uri is None:
            return "URL prefix is not canonical"
        # Segment boundaries, as routing: a prefix reaches at least the source's folder.
        scope = self.path_prefix.rstrip("/") + "/"
        if not uri.path.startswith(scope):
            return f"URL prefix must lie under the source's path_prefix {scope}"
        return None

    # --- sign -----------------------------------------------------------------------------

    def sign(self, request: SignRequest) -> Signed:
        grant = request.grant
        grant.refuse_unexpressible(NAME, frozenset({"prefix", "cookies"}))
        if grant.expires is None or parse_epoch(str(grant.expires)) is None:
            raise SchemeError("gcdn URLs need an expiry (unix seconds)")
        url = self._sign_target(request)
        if grant.cookies:
            return self._sign_cookie(url, grant.prefix, grant.expires)
        separator = "&" if "?" in url else "?"
        key = self.keyring.newest
        tail = f"{EXPIRES}={grant.expires}&{KEY_NAME}={key.id}"
        if grant.prefix is None:
            string = f"{url}{separator}{tail}"
            head = string
        else:
            prefix = self._sign_prefix(grant.prefix, url)
            string = f"{URL_PREFIX}={b64encode(prefix.encode())}&{tail}"
            head = f"{url}{separator}{string}"
        digest = b64encode(signature(key.secret, string.encode()))
        return Signed(f"{head}&{SIGNATURE}={digest}")

    def _sign_cookie(self, url: str, prefix: str | None, expires: int) -> Signed:
        """The unsigned URL and a ``Cloud-CDN-Cookie`` for the grant's prefix (by default
        the source's folder), as Google's ``sign_cookie`` writes it."""
        full = self._sign_prefix(prefix or self.path_prefix.rstrip("/") + "/", url)
        key = self.keyring.newest
        string = f"{URL_PREFIX}={b64encode(full.encode())}:{EXPIRES}={expires}:{KEY_NAME}={key.id}"
        value = f"{string}:{SIGNATURE}={b64encode(signature(key.secret, string.encode()))}"
        path = full[len(self.settings.public_origin) :]
        return Signed(url, (set_cookie(COOKIE, value, path=path, expires=expires),))

    def _sign_target(self, request: SignRequest) -> str:
        if any(param.name in SIGNING_PARAMS for param in request.uri.params):
            raise SchemeError("URL already carries Cloud CDN signing parameters")
        # A bare '?' is no query: the signed URL keeps one '?', as Google's samples do.
        url = self.settings.absolute(request.url)
        return url[:-1] if request.uri.query == "" else url

    def _sign_prefix(self, prefix: str, url: str) -> str:
        """The grant's prefix as a full URL: a path under the source (``/books/``) or a
        full URL starting with ``public_origin``; it must cover the URL being signed."""
        full = self.settings.public_origin + prefix if prefix.startswith("/") else prefix
        problem = self.prefix_problem(full)
        if problem is not None:
            raise SchemeError(problem)
        if not url.startswith(full):
            raise SchemeError("URL is not under the grant's URL prefix")
        return full


def _presented(params: tuple[QueryParam, ...]) -> _Presented | Reason:
    """The signing parameters, each at most once, last and in Google's order."""
    seen: set[str] = set()
    for param in params:  # one pass: this is the hot path
        if param.name in SIGNING_PARAMS:
            if param.name in seen:
                return Reason.NON_CANONICAL
            seen.add(param.name)
    if SIGNATURE not in seen:
        return Reason.MISSING
    count = 4 if URL_PREFIX in seen else 3
    tail = params[-count:]
    order = (URL_PREFIX, EXPIRES, KEY_NAME, SIGNATURE)[-count:]
    if len(tail) != count or len(seen) != count:
        return Reason.MALFORMED
    # The raw names too: an encoded spelling (%53ignature) is a second spelling.
    if any(param.raw_name != name for param, name in zip(tail, order, strict=True)):
        return Reason.MALFORMED
    expires, key_name, signed = tail[-3:]
    return _Presented(expires, key_name, signed, tail[0] if count == 4 else None)


def _cookie_fields(value: str) -> tuple[str, str, str, str] | None:
    """The four values of a ``Cloud-CDN-Cookie``, each once, non-empty, in Google's order."""
    parts = value.split(":")
    if len(parts) != len(_COOKIE_ORDER):
        return None
    values = []
    for part, expected in zip(parts, _COOKIE_ORDER, strict=True):
        name, equals, text = part.partition("=")
        if name != expected or not equals or not text:
            return None
        values.append(text)
    return values[0], values[1], values[2], values[3]


def _decoded_prefix(param: QueryParam) -> str | None:
    return _decoded(param.value)


def _decoded(text: str) -> str | None:
    """A URLPrefix text: strict padded base64url of UTF-8, or None."""
    decoded = b64decode(text)
    if decoded is None:
        return None
    try:
        return decoded.decode()
    except UnicodeDecodeError:
        return None


def _google_key(configured: bytes) -> bytes | None:
    """The key as Google shows it: 16 bytes in padded base64url (24 characters)."""
    key = b64decode(configured.decode("ascii", errors="replace"))
    return key if key is not None and len(key) == KEY_SIZE else None


class GcdnScheme(Scheme[OriginSettings]):
    name = NAME
    settings_type = OriginSettings
    key_types = ("gcdn",)
    key_ids_in_url = True  # KeyName

    def build(self, spec: SourceSpec[OriginSettings]) -> GcdnSource:
        keyring = secret_keyring(
            spec.keys, min_bytes=KEY_SIZE, decode=_google_key, key_id=_KEY_NAME,
            rule="the 16-byte key in padded base64url as its secret"
            " (24 characters, as Google shows it)",
        )  # fmt: skip
        return GcdnSource(keyring, spec.settings, spec.path_prefix)

    def new_key(self, key_type: str) -> NewKey:
        # What `head -c 16 /dev/urandom | base64 | tr +/ -_` makes (Google's instructions).
        return NewKey(secret=b64encode(secrets.token_bytes(KEY_SIZE)))


SCHEME: GcdnScheme = GcdnScheme()
