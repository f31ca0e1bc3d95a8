"""Scheme ``imgproxy``: imgproxy's signed URLs.

``<path_prefix><signature>/<options…>/<source>``: the signature, the first path segment
after the prefix, is ``base64url_nopad(HMAC-SHA256(key, salt + "/" + rest))[:size]``
over the raw path after it (imgproxy signs the path alone). Each key is a key and salt
pair, both given as hex. An ``exp:`` (or ``expires:``) option is the URL's expiry. The
format, the reference signers and where this module is stricter than imgproxy:
docs/schemes/imgproxy.md.
"""

from __future__ import annotations

import hmac
import re
import secrets
from dataclasses import dataclass
from typing import Final
from urllib.parse import quote

from sidecar.core import digests
from sidecar.core.canonical import CanonicalURI
from sidecar.core.encodings import URLSAFE_NOPAD, parse_epoch
from sidecar.core.verdict import Reason, Verdict, allow, deny
from sidecar.errors import SchemeError
from sidecar.schemes.base import (
    SALT,
    SECRET,
    KeyMaterial,
    NewKey,
    Scheme,
    Signed,
    SignRequest,
    SourceSpec,
    VerifyRequest,
)
from sidecar.schemes.keyring import KeyringSource, secret_keyring
from sidecar.schemes.settings import setting

NAME = "imgproxy"
DIGEST_SIZE: Final = 32
# imgproxy's own spellings of an unsigned URL: they carry no signature at all.
UNSIGNED: Final = frozenset({"insecure", "_"})
EXPIRY_OPTIONS: Final = frozenset({"exp", "expires"})
_HEX: Final = re.compile(rb"(?:[0-9a-fA-F]{2})+")
# Every printable ASCII character but "%": quoting a prefix with these safe encodes only
# its non-ASCII characters, the way clients send them.
_PRINTABLE: Final = "".join(chr(code) for code in range(0x21, 0x7F) if chr(code) != "%")


def _size_problem(value: int) -> str | None:
    return None if 1 <= value <= DIGEST_SIZE else f"must be 1 to {DIGEST_SIZE} (bytes)"


@dataclass(frozen=True, slots=True)
class ImgproxySettings:
    # IMGPROXY_SIGNATURE_SIZE: how many bytes of the HMAC the signature keeps.
    signature_size: int = setting(DIGEST_SIZE, check=_size_problem)


def from_hex(text: bytes) -> bytes | None:
    """A configured key or salt: hex digits (either case, as imgproxy reads them), or None."""
    return bytes.fromhex(text.decode("ascii")) if _HEX.fullmatch(text) else None


def signature(key: bytes, salt: bytes, signed_path: bytes, size: int = DIGEST_SIZE) -> bytes:
    """The signature's bytes: ``signed_path`` is "/" and everything after the signature."""
    return digests.hmac_digest(key, salt + signed_path, "sha256")[:size]


def expected_length(size: int) -> int:
    """Characters of the unpadded base64url of ``size`` bytes."""
    return (4 * size + 2) // 3


@dataclass(frozen=True, slots=True)
class ImgproxySource(KeyringSource):
    salts: tuple[bytes, ...]  # each key's salt, in the keyring's order
    size: int  # signature_size
    base: str  # the source's path_prefix, ending in exactly one "/"
    prefixes: frozenset[str]  # its raw spellings: as written, and non-ASCII %-encoded

    @property
    def expiry_required(self) -> bool:
        return False  # an imgproxy URL expires only when it carries an exp: option

    def _after_prefix(self, uri: CanonicalURI) -> str | None:
        for spelling in self.prefixes:
            if (uri.raw_path + "/").startswith(spelling):
                return uri.raw_path[len(spelling) :]
        return None

    def verify(self, request: VerifyRequest) -> Verdict:
        uri = request.uri
        after = self._after_prefix(uri)
        if after is None:
            return deny(Reason.MALFORMED)  # not under this source's prefix at all
        presented_text, slash, rest = after.partition("/")
        if not slash or presented_text in UNSIGNED or ":" in presented_text:
            return deny(Reason.MISSING)  # no segment in its place, or an option (never base64)
        presented = URLSAFE_NOPAD.decode(presented_text)
        if presented is None or len(presented) != self.size or not rest:
            return deny(Reason.MALFORMED)
        matched = self._match(presented, ("/" + rest).encode())
        if matched is None:
            return deny(Reason.INVALID)
        if uri.query is not None:
            return deny(Reason.MALFORMED)  # imgproxy never signs a query: none may ride along
        # Read only once the signature holds: a forgery never learns its expiry failed.
        expires, well_formed = _expiry(rest)
        if not well_formed:
            return deny(Reason.MALFORMED)
        if expires is not None and request.now >= expires + request.clock_skew:
            return deny(Reason.EXPIRED)
        return allow(matched, expires, shareable=True, grant=presented)

    def _match(self, presented: bytes, signed_path: bytes) -> str | None:
        """Every key and salt pair computed and compared, with no early exit."""
        matched = None
        for key, salt in zip(self.keyring.keys, self.salts, strict=True):
            digest = signature(key.secret, salt, signed_path, self.size)
            if hmac.compare_digest(digest, presented) and matched is None:
                matched = key.id
        return matched

    def explain(self, uri: CanonicalURI) -> dict[str, object]:
        """Which part of an imgproxy URL a check reads, for ``sidecar verify``: the text
        imgproxy signs (public: it is the URL), the signature's length against the one
        ``signature_size`` gives. Never the expected signature."""
        after = self._after_prefix(uri)
        if after is None:
            return {"problem": f"not under the source's prefix '{self.base}'"}
        presented_text, _, rest = after.partition("/")
        decoded = URLSAFE_NOPAD.decode(presented_text)
        return {
            "signed_text": "<salt>/" + rest,
            "signature_characters": len(presented_text),
            "expected_characters": expected_length(self.size),
            "signature_bytes": None if decoded is None else len(decoded),
            "signature_size": self.size,
            "query_refused": uri.query is not None,
            "keys_tried": len(self.keyring.keys),
        }

    def sign(self, request: SignRequest) -> Signed:
        grant = request.grant
        grant.refuse_unexpressible(NAME)
        if request.uri.query is not None:
            raise SchemeError("imgproxy signs the path alone: remove the query")
        after = rest = self._to_sign(request.uri)
        if grant.expires is not None:
            if _expiry(rest) != (None, True):
                raise SchemeError("URL already carries an exp: option: sign it without expiry")
            rest = f"exp:{grant.expires}/{rest}"
        key = self.keyring.newest
        digest = signature(key.secret, self.salts[0], ("/" + rest).encode(), self.size)
        head = request.url.uri[: len(request.url.uri) - len(after)]
        return Signed(f"{request.url.origin}{head}{URLSAFE_NOPAD.encode(digest)}/{rest}")

    def _to_sign(self, uri: CanonicalURI) -> str:
        """The path after the prefix: imgproxy's options and source; ``SchemeError`` for
        what could never verify."""
        after = self._after_prefix(uri)
        if after is None:
            raise SchemeError(f"URL is not under the source's prefix '{self.base}'")
        if not after:
            raise SchemeError("nothing to sign after the source's prefix: give options and source")
        first, slash, _ = after.partition("/")
        if first in UNSIGNED and slash:
            raise SchemeError(
                f"remove '{first}/': a signed imgproxy URL carries a signature instead"
            )
        return after


def _expiry(rest: str) -> tuple[int | None, bool]:
    """The ``exp:``/``expires:`` option of the options before the source, and whether the
    options hold at most one, spelled as unix seconds."""
    found: list[str] = []
    for segment in rest.split("/"):
        name, colon, value = segment.partition(":")
        if not colon:
            break  # the source begins at the first segment that is not an option
        if name in EXPIRY_OPTIONS:
            found.append(value)
    if not found:
        return None, True
    expires = parse_epoch(found[0])
    return expires, len(found) == 1 and expires is not None


class ImgproxyScheme(Scheme[ImgproxySettings]):
    name = NAME
    settings_type = ImgproxySettings
    key_fields = frozenset({SECRET, SALT})
    key_types = ("imgproxy",)

    def build(self, spec: SourceSpec[ImgproxySettings]) -> ImgproxySource:
        problems = [f"key '{key.id}': needs a salt as hex" for key in spec.keys
                    if _salt(key) is None]  # fmt: skip
        keyring = secret_keyring(spec.keys, decode=from_hex, rule="a key as hex",
                                 problems=problems)  # fmt: skip
        salts = tuple(_salt(key) or b"" for key in spec.keys)
        base = spec.path_prefix.rstrip("/") + "/"
        prefixes = frozenset({base, quote(base, safe=_PRINTABLE)})
        return ImgproxySource(keyring, salts, spec.settings.signature_size, base, prefixes)

    def new_key(self, key_type: str) -> NewKey:
        """A random 64-byte key as hex, as imgproxy's documentation makes them (a salt is
        made the same way: ``sidecar token new`` once more)."""
        return NewKey(secret=secrets.token_hex(64))


def _salt(key: KeyMaterial) -> bytes | None:
    return from_hex(key.salt) if key.salt else None


SCHEME: ImgproxyScheme = ImgproxyScheme()
