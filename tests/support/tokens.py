"""The md5-token sources' tokens, and md5-token signatures computed here, independently of
the sidecar's code: what a test signs with, and what it expects a signed URL to carry."""

from __future__ import annotations

import hashlib

# The Secure Source documentation's own example token: published, not a secret.
BOOKS_TOKEN = "wakanda123@"
SECRET_TOKEN = "s3cret-source-t0ken-9f2c"
REPORT_TOKEN = "rep0rt-source-t0ken-41aa"


def md5_signed(unsigned_uri: str, token: str = BOOKS_TOKEN) -> str:
    """The md5-token formula, computed here: ``s = md5_hex(uri + token)``, appended last."""
    digest = hashlib.md5((unsigned_uri + token).encode()).hexdigest()
    return f"{unsigned_uri}{'&' if '?' in unsigned_uri else '?'}s={digest}"


def signature_of(uri: str) -> str:
    """The value of the last ``s`` parameter ("" when there is none)."""
    values = [pair[2:] for pair in uri.partition("?")[2].split("&") if pair.startswith("s=")]
    return values[-1] if values else ""
