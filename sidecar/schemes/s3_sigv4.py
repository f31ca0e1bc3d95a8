"""Scheme ``s3-sigv4``: AWS Signature Version 4 presigned URLs, as S3 and MinIO take them.

``?…&X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=<key id>/<day>/<region>/<service>/
aws4_request&X-Amz-Date=…&X-Amz-Expires=…&X-Amz-SignedHeaders=host&X-Amz-Signature=<hex>``:
the signature covers ``GET``, the path as sent, every other query parameter (sorted, in
AWS's encoding), the host of the source's ``public_origin`` and ``UNSIGNED-PAYLOAD``. The
format, the reference signers and where this module is stricter than S3:
docs/schemes/s3-sigv4.md.
"""

from __future__ import annotations

import hmac
import re
from dataclasses import dataclass, field
from typing import Final, NamedTuple

from sidecar.core.canonical import CanonicalURI, QueryParam
from sidecar.core.encodings import parse_epoch
from sidecar.core.urls import is_origin, parse_url
from sidecar.core.verdict import Reason, Verdict, allow, deny
from sidecar.errors import SchemeError
from sidecar.schemes import sigv4
from sidecar.schemes.base import Scheme, Signed, SignRequest, SourceSpec, VerifyRequest
from sidecar.schemes.keyring import KeyIdRule, KeyringSource, secret_keyring
from sidecar.schemes.settings import setting

NAME = "s3-sigv4"
ALGORITHM, CREDENTIAL, DATE = "X-Amz-Algorithm", "X-Amz-Credential", "X-Amz-Date"
EXPIRES, SIGNED_HEADERS, SIGNATURE = "X-Amz-Expires", "X-Amz-SignedHeaders", "X-Amz-Signature"
SECURITY_TOKEN: Final = "X-Amz-Security-Token"  # noqa: S105  (a parameter name)
REQUIRED: Final = (ALGORITHM, CREDENTIAL, DATE, EXPIRES, SIGNED_HEADERS, SIGNATURE)
# Each signing parameter by its case-folded name: any other spelling of one is refused.
_OWN: Final = {name.lower(): name for name in (*REQUIRED, SECURITY_TOKEN)}
MAX_EXPIRES: Final = 604800  # seven days: SigV4's own limit on X-Amz-Expires
_SIGNATURE: Final = re.compile(r"[0-9a-f]{64}")
_SCOPE_PART: Final = re.compile(r"[a-z0-9][a-z0-9-]{0,62}")
_KEY_ID = KeyIdRule(re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{2,127}"),
                    "an access key id is 3 to 128 letters, digits, '_', '.', '-'")  # fmt: skip
# An access key's secret is HMAC key material: shorter ones are guessable offline.
MIN_SECRET_BYTES = 16
_DEFAULT_PORTS: Final = {"http": 80, "https": 443}
# Signing keys a source keeps (a key's days of URLs in use: up to eight a week).
DERIVED_KEYS_KEPT: Final = 64


def _scope_part_problem(value: str) -> str | None:
    return None if _SCOPE_PART.fullmatch(value) else "must be lowercase letters, digits, '-'"


def _origin_problem(value: str) -> str | None:
    return None if is_origin(value) else "must be http(s)://host[:port]"


@dataclass(frozen=True, slots=True)
class S3SigV4Settings:
    region: str = setting("", check=_scope_part_problem, required=True)
    service: str = setting("s3", check=_scope_part_problem)
    # The origin clients are given URLs on: its host (and port, unless the default) is the
    # one the signature covers, as the signer's endpoint named it.
    public_origin: str = setting("", check=_origin_problem, required=True)


def signed_host(origin: str) -> str:
    """The ``host`` header a signer signs for ``origin``: the host in its one spelling
    (IPv6 in brackets) and the port unless it is the scheme's default, as botocore does."""
    url = parse_url(origin + "/", require_absolute=True)
    host = f"[{url.host}]" if ":" in (url.host or "") else (url.host or "")
    if url.port is None or url.port == _DEFAULT_PORTS[url.scheme]:
        return host
    return f"{host}:{url.port}"


class _Presented(NamedTuple):
    key_id: str
    region: str
    service: str
    amz_date: str
    date: int  # X-Amz-Date as unix seconds
    expires: int  # X-Amz-Expires
    signature: bytes


def _read(found: dict[str, QueryParam]) -> _Presented | None:
    """The signing parameters read strictly, or None when any is not in its one form."""
    amz_date, sig = found[DATE].value, found[SIGNATURE].value
    credential = sigv4.uri_decoded(found[CREDENTIAL].value)
    parts = credential.split("/") if credential is not None else []
    date, expires = sigv4.parse_amz_date(amz_date), parse_epoch(found[EXPIRES].value)
    if (
        found[ALGORITHM].value != sigv4.ALGORITHM
        or found[SIGNED_HEADERS].value != "host"  # no other header reaches the verifier
        or not _SIGNATURE.fullmatch(sig)
        or len(parts) != 5
        or parts[4] != sigv4.TERMINATOR
        or not parts[0]
        or parts[1] != amz_date[:8]  # the scope's day is the signing day
        or date is None
        or expires is None
        or not 1 <= expires <= MAX_EXPIRES
    ):
        return None
    return _Presented(parts[0], parts[2], parts[3], amz_date, date, expires, bytes.fromhex(sig))


@dataclass(frozen=True, slots=True)
class S3SigV4Source(KeyringSource):
    region: str
    service: str
    origin: str  # public_origin
    host: str  # the host header its URLs are signed for
    # Signing keys (four HMACs each) by (access key id, day), kept once a signature made
    # with one holds: a forger cannot evict them. A source's keys never change (a reload
    # builds a new source), and its region and service are its own.
    derived_keys: dict[tuple[str, str], bytes] = field(
        default_factory=dict, repr=False, compare=False
    )

    def verify(self, request: VerifyRequest) -> Verdict:
        uri = request.uri
        found, refused = _signing_params(uri)
        if refused is not None:
            return deny(refused)
        presented = _read(found)
        if presented is None or not _all_uri_encoded(uri):
            return deny(Reason.MALFORMED)
        key = self.keyring.get(presented.key_id)
        if key is None:
            return deny(Reason.UNKNOWN_KEY)
        if (presented.region, presented.service) != (self.region, self.service):
            return deny(Reason.INVALID)  # signed for another region or service
        pairs = [_pair(param) for param in uri.params if param.raw_name != SIGNATURE]
        day = presented.amz_date[:8]
        signing_key = self._derived(key.id, key.secret, day)
        expected = self._signature(signing_key, presented.amz_date, uri.raw_path, pairs)
        if not hmac.compare_digest(expected, presented.signature):
            return deny(Reason.INVALID)
        self._remember((key.id, day), signing_key)
        # Read only once the signature holds: a forgery never learns its time failed.
        if presented.date > request.now + request.clock_skew:
            return deny(Reason.NOT_YET_VALID)
        expires_at = presented.date + presented.expires
        if request.now >= expires_at + request.clock_skew:
            return deny(Reason.EXPIRED)
        return allow(key.id, expires_at, shareable=True, grant=presented.signature)

    def _derived(self, key_id: str, secret: bytes, day: str) -> bytes:
        """The key's signing key for ``day``: remembered, else derived."""
        kept = self.derived_keys.get((key_id, day))
        if kept is not None:
            return kept
        return sigv4.signing_key(secret, day, self.region, self.service)

    def _remember(self, key_day: tuple[str, str], signing_key: bytes) -> None:
        """Keep a signing key a signature has just proved (verify alone writes here)."""
        if key_day in self.derived_keys:
            return
        if len(self.derived_keys) >= DERIVED_KEYS_KEPT:
            del self.derived_keys[next(iter(self.derived_keys))]  # insertion order: the oldest
        self.derived_keys[key_day] = signing_key

    def _signature(
        self, signing_key: bytes, amz_date: str, raw_path: str, pairs: list[tuple[str, str]]
    ) -> bytes:
        """The signature over ``GET``, the path as sent, the query's pairs but the
        signature (already in AWS's encoding) sorted, and the host."""
        # Sorted by name, then value (AWS's order, botocore's): sorting "name=value" text
        # would put "w2=1" before "w=400", since "2" sorts before "=".
        query = "&".join(f"{name}={value}" for name, value in sorted(pairs))
        canonical = f"GET\n{raw_path}\n{query}\nhost:{self.host}\n\nhost\nUNSIGNED-PAYLOAD"
        scope = sigv4.scope(amz_date[:8], self.region, self.service)
        return sigv4.signature(signing_key, amz_date, scope, canonical)

    def sign(self, request: SignRequest) -> Signed:
        grant = request.grant
        grant.refuse_unexpressible(NAME, frozenset({"not_before"}))
        signed_at, lifetime = _signing_time(grant.not_before, request.now, grant.expires)
        url, uri = request.url, request.uri
        if url.origin and url.origin != self.origin:
            raise SchemeError(f"URL must start with the source's public_origin {self.origin}")
        if any(param.name.lower() in _OWN for param in uri.params):
            raise SchemeError("URL already carries X-Amz-* signing parameters")
        if not _all_uri_encoded(uri):
            raise SchemeError("encode the query as AWS does: every name=value, %XX uppercase")
        key = self.keyring.newest
        amz_date = sigv4.format_amz_date(signed_at)
        credential = f"{key.id}/{sigv4.scope(amz_date[:8], self.region, self.service)}"
        unsigned = url.uri.rstrip("?") if uri.query == "" else url.uri
        own = [(ALGORITHM, sigv4.ALGORITHM), (CREDENTIAL, sigv4.uri_encode(credential)),
               (DATE, amz_date), (EXPIRES, str(lifetime)), (SIGNED_HEADERS, "host")]  # fmt: skip
        unsigned += ("&" if "?" in unsigned else "?") + "&".join(f"{n}={v}" for n, v in own)
        pairs = [_pair(param) for param in uri.params] + own
        # Derived afresh: signing runs in the offload pool, and only verify keeps keys.
        signing_key = sigv4.signing_key(key.secret, amz_date[:8], self.region, self.service)
        sig = self._signature(signing_key, amz_date, uri.raw_path, pairs).hex()
        return Signed(f"{url.origin}{unsigned}&{SIGNATURE}={sig}")


def _signing_params(uri: CanonicalURI) -> tuple[dict[str, QueryParam], Reason | None]:
    """The signing parameters by name, each at most once and in its one spelling."""
    found: dict[str, QueryParam] = {}
    for param in uri.params:
        own = _OWN.get(param.name.lower())
        if own is None:
            continue
        if param.raw_name != own:
            return found, Reason.MALFORMED  # x-amz-signature, X-Amz-%53ignature: not ours
        if own in found:
            return found, Reason.NON_CANONICAL
        found[own] = param
    if SIGNATURE not in found:
        return found, Reason.MISSING
    if SECURITY_TOKEN in found or len(found) != len(REQUIRED):
        return found, Reason.MALFORMED  # session credentials are not read here (no STS)
    return found, None


def _all_uri_encoded(uri: CanonicalURI) -> bool:
    """Every parameter written ``name=value`` in AWS's encoding: the canonical query is
    then the parameters as sent, sorted, and no second spelling signs the same."""
    for param in uri.params:
        equals_at = param.start + len(param.raw_name)
        if not param.raw_name or uri.raw[equals_at : equals_at + 1] != "=":
            return False  # "?a" and "?a=" would be two spellings of one canonical query
        if sigv4.uri_decoded(param.raw_name) is None or sigv4.uri_decoded(param.value) is None:
            return False
    return True


def _pair(param: QueryParam) -> tuple[str, str]:
    return param.raw_name, param.value


def _signing_time(not_before: int | None, now: int | None, expires: int | None) -> tuple[int, int]:
    """``X-Amz-Date`` and ``X-Amz-Expires``: a SigV4 URL is valid from its signing time (the
    grant's not-before, else the time it is signed) for at most seven days."""
    if expires is None:
        raise SchemeError("s3-sigv4 URLs need an expiry")
    signed_at = not_before if not_before is not None else now
    if signed_at is None:
        raise SchemeError("s3-sigv4 URLs carry their signing time (X-Amz-Date): give not_before")
    lifetime = expires - signed_at
    if not 1 <= lifetime <= MAX_EXPIRES:
        raise SchemeError(f"s3-sigv4 URLs last 1 to {MAX_EXPIRES} seconds after their signing time")
    return signed_at, lifetime


class S3SigV4Scheme(Scheme[S3SigV4Settings]):
    name = NAME
    settings_type = S3SigV4Settings

    def build(self, spec: SourceSpec[S3SigV4Settings]) -> S3SigV4Source:
        settings = spec.settings
        keyring = secret_keyring(spec.keys, min_bytes=MIN_SECRET_BYTES, key_id=_KEY_ID)
        origin = settings.public_origin
        host = signed_host(origin) if is_origin(origin) else ""
        return S3SigV4Source(keyring, settings.region, settings.service, origin, host)


SCHEME: S3SigV4Scheme = S3SigV4Scheme()
