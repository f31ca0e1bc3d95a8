"""``folder_grant``: one URL-signed playlist (or gallery index) opens its folder by cookie
(docs/folder-grants.md).

A player is handed one signed URL, but fetches hundreds of segments whose URLs the
playlist names unsigned. When a source lists the endings of such files
(``folder_grant = [".m3u8", ".mpd"]``), an allow of one of them won by its *URL* also
answers the scheme's own signed cookies for the file's folder, ending when the URL ends.
An allow won by a cookie grants nothing new: a cookie never renews itself.

Pure: the clock and the request are given; signing is the scheme's own ``sign``.
"""

from __future__ import annotations

import re
from typing import Final, NamedTuple

from sidecar.core.verdict import Verdict
from sidecar.policy.settings import SourceSettings
from sidecar.policy.signing import sign_request
from sidecar.schemes.base import Grant, SourceScheme, VerifyRequest

# A folder granted by cookie is named in plain characters and percent-escapes only: a
# wildcard (akamai's ACL and CloudFront's Resource are globs: '*', '?') or another
# sub-delimiter in a folder's name would let its grant open other folders.
_PLAIN_FOLDER: Final = re.compile(r"/(?:[A-Za-z0-9._~/-]|%[0-9A-Fa-f]{2})*")


class FolderGrant(NamedTuple):
    """The cookie grant an allow carries: the folder (a raw path ending in ``/``, as the
    client sent it), the URL's own expiry (unix seconds), and the client's address when
    the URL was bound to it (the cookie is bound to it too: it never grants more)."""

    folder: str
    expires: int
    client_ip: str | None = None


def folder_grant(
    source: SourceSettings, verdict: Verdict, request: VerifyRequest
) -> FolderGrant | None:
    """The folder a valid ``verdict`` on a ``folder_grant`` file grants, or None: not such
    a file, a URL without expiry (a cookie must end), already expired, a folder named
    with other than plain characters, or an allow the URL alone would not have won (a
    cookie's)."""
    raw_path = request.uri.raw_path
    if not raw_path.endswith(source.folder_grant) or verdict.expires_at is None:
        return None
    if verdict.expires_at <= request.now:
        return None  # allowed within the clock skew, but a cookie would be born expired
    folder = raw_path[: raw_path.rfind("/") + 1]
    if not _PLAIN_FOLDER.fullmatch(folder):
        return None
    if request.cookies and not _won_by_url(source, request):
        return None
    # A URL allow the auth cache may not share is bound to the client's address.
    bound = None if verdict.shareable else request.client_ip
    if not verdict.shareable and bound is None:
        return None
    return FolderGrant(folder, verdict.expires_at, bound)


def _won_by_url(source: SourceSettings, request: VerifyRequest) -> bool:
    """Whether the URL alone verifies. Every cookie scheme decides a URL carrying a
    signing parameter by the URL alone, and reads cookies only for one that carries none:
    so the same request without its cookies tells which won. Asked only for a
    ``folder_grant`` file that came with cookies."""
    assert source.signatures is not None  # a verdict was given
    return source.signatures.verify(request._replace(cookies=None)).valid


def grant_cookies(signatures: SourceScheme, grant: FolderGrant, now: float) -> tuple[str, ...]:
    """The ``Set-Cookie`` values of ``grant``, made by the source's scheme as ``sidecar
    sign --cookies --prefix <folder>`` makes them (an RSA signature for ``cloudfront``:
    the caller keeps it off the verify loop). ``SigningError`` or ``SchemeError`` when the
    scheme cannot (the config checks that it can, with the source's keys)."""
    cookie_grant = Grant(
        expires=grant.expires, client_ip=grant.client_ip, prefix=grant.folder, cookies=True
    )
    request = sign_request(grant.folder, cookie_grant, now=int(now))
    return signatures.sign(request).cookies
