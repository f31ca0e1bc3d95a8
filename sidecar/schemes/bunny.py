"""Scheme ``bunny``: Bunny CDN token authentication, the query form.

``<path>?token=T&<signed parameters, sorted>&expires=E`` (``sidecar.schemes.bunny_token``
reads it). The advanced variant's token is read in both of Bunny's spellings:

- ``HS256-`` (+ ``1-`` when bound to an address) + base64url(HMAC-SHA256(key, path +
  expires + address bytes + signed data)): the current signers (BunnyWay's
  BunnyCDN.TokenAuthentication 2.x); the address is IPv4's 4 bytes or IPv6's /64;
- classic: base64url(SHA-256(key + path + expires + address text + signed data)): the
  earlier PHP and Node signers and Bunny's documentation.

``path`` is the URI's path as sent, or the ``token_path`` parameter (a prefix grant).
With ``path_tokens``, the path form's token (``/bcdn_token=T&…&expires=E/path``, which
nginx/signed-url-bunny-path.conf hands over as ``/path?bcdn_token=T&…&expires=E``) is read
too, and signing writes that form. The basic variant is base64url(MD5(key + path +
expires + address text)), no parameters.
The format, its one spelling and the answers: docs/schemes/bunny.md.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final
from urllib.parse import unquote_plus

from sidecar.core import digests
from sidecar.core.encodings import URLSAFE_NOPAD
from sidecar.core.verdict import Reason, Verdict, allow, deny
from sidecar.errors import SchemeError
from sidecar.policy.rules import UNKNOWN_COUNTRY, country
from sidecar.schemes.base import Scheme, Signed, SignRequest, SourceSpec, VerifyRequest
from sidecar.schemes.bunny_token import (
    BLOCKED,
    COUNTRIES,
    EXPIRES,
    HS256_PREFIX,
    IP_FLAG,
    KNOWN_CONDITIONS,
    PATH_TOKEN,
    TOKEN,
    TOKEN_PATH,
    Query,
    Token,
    address_text,
    countries,
    packed_address,
    plain_name,
    read_query,
    read_token,
    url_data,
)
from sidecar.schemes.keyring import KeyringSource, secret_keyring
from sidecar.schemes.settings import setting

NAME = "bunny"
ADVANCED, BASIC = "advanced", "basic"
_DIGEST_SIZES: Final = {ADVANCED: 32, BASIC: 16}
# A path the path form can carry: what nginx/signed-url-bunny-path.conf serves as written
# (no percent-escape: nginx would serve the escape's text, not the file it names).
_PATH_FORM_PATH: Final = re.compile(r"/[A-Za-z0-9._~!&()*+,=:@/-]*")


def _variant_problem(value: str) -> str | None:
    return None if value in _DIGEST_SIZES else f"must be '{ADVANCED}' or '{BASIC}'"


@dataclass(frozen=True, slots=True)
class BunnySettings:
    # Which of the zone's token types the source reads: SHA-256 (advanced) or MD5 (basic).
    variant: str = setting(ADVANCED, check=_variant_problem)
    # Whether the path form's token (``bcdn_token``) is read, and signing writes that form.
    path_tokens: bool = setting(False)


def hs256(secret: bytes, path: str, expires: int, address: bytes, data: str) -> bytes:
    message = path.encode() + str(expires).encode() + address + data.encode()
    return digests.hmac_digest(secret, message, "sha256")


def classic(secret: bytes, path: str, expires: int, address: str, data: str) -> bytes:
    return digests.sha256(secret + f"{path}{expires}{address}{data}".encode())


def basic(secret: bytes, path: str, expires: int, address: str) -> bytes:
    text = f"{path}{expires}{address}".encode()
    # MD5 because Bunny's basic tokens are MD5 (the docs call the variant deprecated).
    return digests.md5(secret + text)


@dataclass(frozen=True, slots=True)
class BunnySource(KeyringSource):
    settings: BunnySettings
    path_prefix: str

    def _scope(self, token_path: str) -> bool:
        """Whether a ``token_path`` lies within this source's ``path_prefix``."""
        scope = self.path_prefix.rstrip("/") + "/"
        return token_path.startswith("/") and (token_path.rstrip("/") + "/").startswith(scope)

    def _granted(self, query: Query, path: str, raw_path: str) -> tuple[str, Reason]:
        """The path the token signs, and INVALID when its ``token_path`` does not cover
        ``path`` (on segment boundaries) or leaves the source."""
        token_path = query.get(TOKEN_PATH)
        if token_path is None:
            return raw_path, Reason.OK
        covers = path == token_path or path.startswith(token_path.rstrip("/") + "/")
        return token_path, Reason.OK if covers and self._scope(token_path) else Reason.INVALID

    def _match(self, presented: bytes, path: str, query: Query, address: bytes | str) -> str | None:
        data, at = query.signing_data(), query.expires
        if isinstance(address, bytes):
            return self.keyring.match(presented, lambda key: hs256(key, path, at, address, data))
        if self.settings.variant == BASIC:
            return self.keyring.match(presented, lambda key: basic(key, path, at, address))
        return self.keyring.match(presented, lambda key: classic(key, path, at, address, data))

    def _signer(self, request: VerifyRequest, token: Token, query: Query,
                path: str) -> tuple[str | None, bool]:  # fmt: skip
        """The key whose token this is, and whether it binds the client's address."""
        if token.keyed:
            address = packed_address(request.client_ip) if token.ip_bound else b""
            if address is None:
                return None, True  # an unreadable address: no key can match
            return self._match(token.digest, path, query, address), token.ip_bound
        # The classic and basic tokens do not say whether they bind an address: both read.
        unbound = self._match(token.digest, path, query, "")
        text = address_text(request.client_ip)
        bound = self._match(token.digest, path, query, text) if text else None
        return (unbound, False) if unbound is not None else (bound, bound is not None)

    def verify(self, request: VerifyRequest) -> Verdict:
        query = read_query(request.uri, path_form=self.settings.path_tokens)
        if isinstance(query, Reason):
            return deny(query)
        variant = self.settings.variant
        token = read_token(query.token, _DIGEST_SIZES[variant], keyed=variant == ADVANCED)
        allowed, blocked = countries(query.get(COUNTRIES)), countries(query.get(BLOCKED))
        if token is None or allowed == frozenset() or blocked == frozenset():
            return deny(Reason.MALFORMED)
        if variant == BASIC and query.params:
            return deny(Reason.INVALID)  # the basic token signs no parameter
        path, scoped = self._granted(query, request.uri.path, request.uri.raw_path)
        if scoped is not Reason.OK:
            return deny(scoped)
        if token.ip_bound and not request.client_ip:
            return deny(Reason.IP_MISMATCH)  # bound, and no address to check it against
        matched, bound = self._signer(request, token, query, path)
        if matched is None:
            return deny(Reason.INVALID)  # a forgery, or another address: the URL cannot say
        # Read only once the signature holds: a forgery never learns its time failed.
        if request.now >= query.expires + request.clock_skew:
            return deny(Reason.EXPIRED)
        code = country(request.country or "") or UNKNOWN_COUNTRY
        if (allowed is not None and code not in allowed) or (blocked and code in blocked):
            return deny(Reason.COUNTRY)
        shareable = not bound and allowed is None and blocked is None
        return allow(matched, query.expires, shareable=shareable, grant=token.digest)

    def _sign_params(self, request: SignRequest) -> list[tuple[str, str]]:
        params = []
        for param in request.uri.params:
            name = param.name
            if name in (TOKEN, PATH_TOKEN, EXPIRES) or (name.startswith("token_")
                                            and name not in KNOWN_CONDITIONS):  # fmt: skip
                raise SchemeError(f"URL already carries '{name}', or a condition not kept here")
            if not plain_name(name):
                raise SchemeError(f"parameter '{name}': letters, digits and '_ . ~ -' only")
            params.append((name, unquote_plus(param.value)))
        if len({name for name, _ in params}) != len(params):
            raise SchemeError("a repeated query parameter cannot be signed (Bunny signs one value)")
        return params

    def sign(self, request: SignRequest) -> Signed:
        grant = request.grant
        grant.refuse_unexpressible(NAME, frozenset({"client_ip", "prefix"}))
        if grant.expires is None:
            raise SchemeError("bunny URLs need an expiry")
        params, path = self._sign_params(request), request.uri.raw_path
        if grant.prefix is not None:
            prefix, url_path = grant.prefix, request.uri.path
            covers = url_path == prefix or url_path.startswith(prefix.rstrip("/") + "/")
            if not (self._scope(prefix) and covers):
                raise SchemeError("the prefix must be a path of this source above the URL")
            params.append((TOKEN_PATH, grant.prefix))
            path = grant.prefix
        params.sort()
        token = self._token(path, grant.expires, tuple(params), grant.client_ip)
        signed = f"{token}{url_data(tuple(params))}&{EXPIRES}={grant.expires}"
        if self.settings.path_tokens:
            if not _PATH_FORM_PATH.fullmatch(request.uri.raw_path):
                raise SchemeError("the path form carries letters, digits and '/._~!&()*+,=:@-'")
            # The path form, as BunnyWay's signers write it: the query moves into the token.
            return Signed(f"{request.url.origin}/{PATH_TOKEN}={signed}{request.uri.raw_path}")
        return Signed(f"{request.url.origin}{request.uri.raw_path}?{TOKEN}={signed}")

    def _token(self, path: str, expires: int, params: tuple[tuple[str, str], ...],
               client_ip: str | None) -> str:  # fmt: skip
        secret = self.keyring.newest.secret
        if self.settings.variant == BASIC:
            if params:
                raise SchemeError("basic tokens sign no query parameter and no prefix")
            text = address_text(client_ip) if client_ip is not None else ""
            if text is None:
                raise SchemeError("client_ip is not an IP address")
            return URLSAFE_NOPAD.encode(basic(secret, path, expires, text))
        address = packed_address(client_ip) if client_ip is not None else b""
        if address is None:
            raise SchemeError("client_ip is not an IP address")
        data = "&".join(f"{name}={value}" for name, value in params)
        flag = IP_FLAG if client_ip is not None else ""
        return (
            HS256_PREFIX + flag + URLSAFE_NOPAD.encode(hs256(secret, path, expires, address, data))
        )


class BunnyScheme(Scheme[BunnySettings]):
    name = NAME
    settings_type = BunnySettings

    def build(self, spec: SourceSpec[BunnySettings]) -> BunnySource:
        return BunnySource(secret_keyring(spec.keys), spec.settings, spec.path_prefix)


SCHEME: BunnyScheme = BunnyScheme()
