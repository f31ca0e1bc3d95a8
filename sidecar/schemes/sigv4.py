"""AWS Signature Version 4, the parts a presigned URL needs: AWS's URI encoding, the
``X-Amz-Date`` stamp, the derived signing key and the string to sign.

Pure: times are passed in as unix seconds, never read from a clock.
"""

from __future__ import annotations

import calendar
import re
import time
from typing import Final
from urllib.parse import quote, unquote

from sidecar.core import digests

ALGORITHM: Final = "AWS4-HMAC-SHA256"
TERMINATOR: Final = "aws4_request"
# ``YYYYMMDDTHHMMSSZ``, UTC: the one spelling AWS signers write.
_AMZ_DATE: Final = re.compile(r"([0-9]{4})([0-9]{2})([0-9]{2})T([0-9]{2})([0-9]{2})([0-9]{2})Z")
_AMZ_DATE_FORMAT: Final = "%Y%m%dT%H%M%SZ"
# AWS's unreserved characters: text of these alone is its own encoding.
_UNRESERVED: Final = re.compile(r"[A-Za-z0-9_.~-]*")


def uri_encode(text: str) -> str:
    """AWS's URI encoding: every byte of the UTF-8 text but ``A-Z a-z 0-9 - _ . ~`` as
    ``%XX`` with uppercase hex (``quote`` never leaves more than those unreserved)."""
    return quote(text, safe="")


def uri_decoded(raw: str) -> str | None:
    """The text of ``raw`` when it is in AWS's encoding, its one spelling (no ``+`` for a
    space, no lowercase hex, no encoded unreserved character, UTF-8 only); else None."""
    if _UNRESERVED.fullmatch(raw):
        return raw  # most parameters (X-Amz-Date, ...): nothing to decode, and quick
    try:
        decoded = unquote(raw, errors="strict")
    except UnicodeDecodeError:
        return None
    return decoded if uri_encode(decoded) == raw else None


def parse_amz_date(text: str) -> int | None:
    """``X-Amz-Date`` as unix seconds, or None for anything but a real UTC date and time in
    its one spelling."""
    match = _AMZ_DATE.fullmatch(text)
    if match is None:
        return None
    year, month, day, hour, minute, second = (int(part) for part in match.groups())
    try:
        seconds = calendar.timegm((year, month, day, hour, minute, second, 0, 0, 0))
    except ValueError:
        return None  # month 0 or 13, year 0: timegm raises rather than normalising
    # timegm normalises an impossible date (Feb 30) into another: only a round trip is real.
    return seconds if format_amz_date(seconds) == text else None


def format_amz_date(seconds: int) -> str:
    return time.strftime(_AMZ_DATE_FORMAT, time.gmtime(seconds))


def signing_key(secret: bytes, day: str, region: str, service: str) -> bytes:
    """The key derived for one day, region and service (AWS's four HMACs)."""
    key = digests.hmac_digest(b"AWS4" + secret, day.encode(), "sha256")
    key = digests.hmac_digest(key, region.encode(), "sha256")
    key = digests.hmac_digest(key, service.encode(), "sha256")
    return digests.hmac_digest(key, TERMINATOR.encode(), "sha256")


def scope(day: str, region: str, service: str) -> str:
    """The credential scope, after the access key id in ``X-Amz-Credential``."""
    return f"{day}/{region}/{service}/{TERMINATOR}"


def signature(key: bytes, amz_date: str, credential_scope: str, canonical_request: str) -> bytes:
    """The signature's bytes (presented as lowercase hex) over the canonical request."""
    digest = digests.sha256(canonical_request.encode()).hex()
    string_to_sign = f"{ALGORITHM}\n{amz_date}\n{credential_scope}\n{digest}"
    return digests.hmac_digest(key, string_to_sign.encode(), "sha256")
