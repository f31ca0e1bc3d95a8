"""A source's ``folder_grant`` (docs/folder-grants.md): the file endings whose URL-signed
allow answers a cookie for the file's folder. Refused unless the source can keep that
promise: its scheme has a cookie form, it accepts cookies, and it holds a key this
process signs with (checked by signing one grant at load)."""

from __future__ import annotations

import re
import time

from sidecar.config.fields import Table
from sidecar.errors import SchemeError, SigningError
from sidecar.policy.folder_grants import FolderGrant, grant_cookies
from sidecar.policy.settings import UseLimit
from sidecar.schemes.base import SourceScheme

FIELD = "folder_grant"
MAX_ENDINGS = 16
# An ending is the tail of a file name (".m3u8", "index.html"): no '/', nothing to decode.
_ENDING = re.compile(r"[A-Za-z0-9._~-]{1,64}")
_RULE = 'must be a list of file endings such as ".m3u8" or "index.html" (of \'._~-\' and alnum)'


def parse_folder_grant(
    table: Table,
    signatures: SourceScheme | None,
    scheme_settings: object,
    uses: UseLimit | None,
    path_prefix: str | None,
) -> tuple[str, ...]:
    """The source's endings (none when it sets none: it then pays nothing for them)."""
    raw = table.data.get(FIELD)
    if raw is None:
        return ()
    endings = raw if isinstance(raw, list) else None
    ok = endings is not None and 0 < len(endings) <= MAX_ENDINGS
    if not table.check(FIELD, ok and all(_is_ending(e) for e in endings or ()), _RULE):
        return ()
    assert endings is not None
    accepts = getattr(scheme_settings, "accept_cookies", None)
    if not table.check(FIELD, accepts is not None, "needs a scheme with a cookie form "
                       "(cloudfront, gcdn, akamai)"):  # fmt: skip
        return ()
    if not table.check(FIELD, accepts is True, "needs accept_cookies = true"):
        return ()
    if not table.check(FIELD, uses is None, "cannot be combined with max_uses"):
        return ()
    folder = (path_prefix or "/").rstrip("/") + "/"
    if signatures is not None and not _signs(table, signatures, folder):
        return ()
    return tuple(str(ending) for ending in endings)


def _is_ending(value: object) -> bool:
    return isinstance(value, str) and bool(_ENDING.fullmatch(value))


def _signs(table: Table, signatures: SourceScheme, folder: str) -> bool:
    """Whether this process can sign the source's cookies: one is signed now, for the
    source's own folder, as a granted folder's will be."""
    try:
        grant_cookies(signatures, FolderGrant(folder, int(time.time()) + 60), time.time())
    except (SchemeError, SigningError) as error:
        return table.check(FIELD, False, f"needs a key this process signs with ({error})")
    return True
