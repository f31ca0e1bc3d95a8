"""Scheme ``nginx-secure-link``: nginx's own ``secure_link`` / ``secure_link_md5``.

The source's settings are the two directives' values, compiled once when the source is
built; the hash is ``base64url(MD5(expression))`` with ``$secret`` standing for the key.
The answers, and every place this module is stricter than nginx (real nginx is the test
oracle): docs/schemes/nginx-secure-link.md.
https://nginx.org/en/docs/http/ngx_http_secure_link_module.html
"""

from __future__ import annotations

import ipaddress
import itertools
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import NamedTuple

from sidecar.core import canonical, digests
from sidecar.core.canonical import CanonicalURI, QueryParam
from sidecar.core.encodings import URLSAFE, URLSAFE_NOPAD, parse_epoch
from sidecar.core.verdict import Reason, Verdict, allow, deny
from sidecar.errors import SchemeError
from sidecar.schemes.base import Scheme, Signed, SignRequest, SourceSpec, VerifyRequest
from sidecar.schemes.keyring import KeyringSource, secret_keyring
from sidecar.schemes.settings import setting

NAME = "nginx-secure-link"
DEFAULT_SECURE_LINK = "$arg_md5,$arg_expires"
DEFAULT_SECURE_LINK_MD5 = "$secure_link_expires$uri$remote_addr $secret"
_DIGEST_SIZE = 16

# The variables an expression may name (nginx lowercases variable names).
URI, REMOTE_ADDR, HOST, EXPIRES, SECRET_VAR, ARG = (
    "uri", "remote_addr", "host", "secure_link_expires", "secret", "arg_",
)  # fmt: skip
LITERAL = ""
_NAMED = frozenset({URI, REMOTE_ADDR, HOST, EXPIRES, SECRET_VAR})
_NAME_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_")


# --- the template compiler -------------------------------------------------------------------


class Part(NamedTuple):
    """One piece of a template: a literal (``kind`` ""), a named variable, or ``$arg_NAME``
    (``kind`` "arg_", ``text`` the lowercased NAME)."""

    kind: str
    text: str = ""


def compile_template(template: str) -> tuple[Part, ...]:
    """Split an nginx complex value into parts, as ``ngx_http_script_compile`` reads it:
    ``$name`` (letters, digits, ``_``) or ``${name}``; ``SchemeError`` for what nginx
    refuses, and for any variable this scheme cannot know."""
    parts: list[Part] = []
    literal = ""
    index = 0
    while index < len(template):
        char = template[index]
        if char != "$":
            literal += char
            index += 1
            continue
        name, index = _variable_at(template, index + 1)
        if literal:
            parts.append(Part(LITERAL, literal))
            literal = ""
        parts.append(_variable(name))
    if literal:
        parts.append(Part(LITERAL, literal))
    return tuple(parts)


def _variable_at(template: str, index: int) -> tuple[str, int]:
    """The variable name starting at ``index`` (just after ``$``) and the index after it."""
    bracket = index < len(template) and template[index] == "{"
    start = index + 1 if bracket else index
    end = start
    while end < len(template) and template[end] in _NAME_CHARS:
        end += 1
    name = template[start:end]
    if bracket:
        if end >= len(template) or template[end] != "}":
            raise SchemeError(f"the closing bracket in '${{{name}' is missing")
        end += 1
    if not name:
        raise SchemeError("'$' is not followed by a variable name")
    if name[0] in "123456789" and not bracket:
        raise SchemeError(f"regex captures (${name[0]}) are not supported")
    return name, end


def _variable(name: str) -> Part:
    lowered = name.lower()
    if lowered in _NAMED:
        return Part(lowered)
    if lowered.startswith(ARG) and len(lowered) > len(ARG):
        return Part(ARG, lowered[len(ARG) :])
    supported = "$uri, $remote_addr, $host, $secure_link_expires, $arg_NAME, $secret"
    raise SchemeError(f"unsupported variable ${name} (supported: {supported})")


def _refusal(parse: Callable[[str], object]) -> Callable[[str], str | None]:
    """A setting's check: what ``parse`` refuses in a value (None: nothing)."""

    def check(text: str) -> str | None:
        try:
            parse(text)
        except SchemeError as error:
            return str(error)
        return None

    return check


def _parse_secure_link(text: str) -> tuple[str, str | None]:
    """``$arg_HASH`` or ``$arg_HASH,$arg_EXPIRES`` → the two parameter names."""
    parts = compile_template(text)
    shape = tuple(part.kind for part in parts)
    if shape == (ARG,):
        return parts[0].text, None
    if shape == (ARG, LITERAL, ARG) and parts[1].text == "," and parts[0].text != parts[2].text:
        return parts[0].text, parts[2].text
    raise SchemeError("secure_link must be '$arg_NAME' or '$arg_NAME,$arg_OTHER'")


# --- the scheme --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SecureLinkSource(KeyringSource):
    hash_arg: str
    expires_arg: str | None
    template: tuple[Part, ...]

    @property
    def expiry_required(self) -> bool:
        return self.expires_arg is not None  # ``secure_link`` names an expiry parameter

    @property
    def uses_client_ip(self) -> bool:
        return any(part.kind == REMOTE_ADDR for part in self.template)

    @property
    def read_args(self) -> frozenset[str]:
        """Every query parameter the scheme reads: each must have one spelling."""
        covered = {part.text for part in self.template if part.kind == ARG}
        expiry = {self.expires_arg} if self.expires_arg is not None else set()
        return frozenset({self.hash_arg, *covered, *expiry})

    def verify(self, request: VerifyRequest) -> Verdict:
        uri = request.uri
        found = _find_args(uri, self.read_args)
        if isinstance(found, Reason):
            return deny(found)
        hash_param = found.get(self.hash_arg)
        if hash_param is None:
            return deny(Reason.MISSING)
        presented = _decode_hash(hash_param.value)
        if presented is None:
            return deny(Reason.MALFORMED)
        expires_text, expires_at = "", None
        if self.expires_arg is not None:
            expiry = found.get(self.expires_arg)
            if expiry is None:
                return deny(Reason.MISSING)
            expires_at = parse_epoch(expiry.value)
            if not expires_at:  # nginx: an expiry of 0 or not a number is ""
                return deny(Reason.MALFORMED)
            expires_text = expiry.value
        if (self.uses_client_ip and request.client_ip is None) or (
            request.host is None and any(part.kind == HOST for part in self.template)
        ):
            return deny(Reason.INVALID)  # nginx always has both: never guess them
        values = {URI: uri.path, REMOTE_ADDR: request.client_ip or "", HOST: request.host or "",
                  EXPIRES: expires_text}  # fmt: skip
        pieces = _render(self.template, values, found)
        matched = self.keyring.match(presented, lambda secret: _digest(pieces, secret))
        if matched is None:
            return deny(Reason.INVALID)
        if expires_at is not None and _expired(expires_at, request):
            return deny(Reason.EXPIRED)
        return allow(matched, expires_at, shareable=not self.uses_client_ip, grant=presented)

    def sign(self, request: SignRequest) -> Signed:
        grant = request.grant
        supported = frozenset({"client_ip"}) if self.uses_client_ip else frozenset()
        grant.refuse_unexpressible(NAME, supported)
        client_ip = self._client_ip(grant.client_ip)
        if any(part.kind == HOST for part in self.template) and request.url.host is None:
            raise SchemeError("this source's secure_link_md5 uses $host: sign an absolute URL")
        uri = request.url.uri
        unsigned = uri.rstrip("?") if request.uri.query == "" else uri
        separator = "&" if "?" in unsigned else "?"
        expiry = self._expiry_param(grant.expires)
        # The expression is read from the URL as the client will send it (the expiry
        # parameter may be covered as $arg_NAME too); the hash itself is never covered.
        parsed = canonical.parse(unsigned + (separator + expiry if expiry else ""))
        if parsed is None:
            raise SchemeError("URL is not canonical")
        found = _find_args(parsed, self.read_args)
        if isinstance(found, Reason) or self.hash_arg in found:
            raise SchemeError(f"URL already carries '{self.hash_arg}' or repeats a parameter "
                              "the signature covers")  # fmt: skip
        values = {URI: parsed.path, REMOTE_ADDR: client_ip, HOST: request.url.host or "",
                  EXPIRES: "" if grant.expires is None else str(grant.expires)}  # fmt: skip
        digest = _digest(_render(self.template, values, found), self.keyring.newest.secret)
        signed = f"{unsigned}{separator}{self.hash_arg}={URLSAFE_NOPAD.encode(digest)}"
        return Signed(request.url.origin + signed + ("&" + expiry if expiry else ""))

    def _client_ip(self, given: str | None) -> str:
        if not self.uses_client_ip:
            return ""
        if given is None:
            raise SchemeError("this source's secure_link_md5 uses $remote_addr: "
                              "the grant needs the client's address")  # fmt: skip
        try:
            return str(ipaddress.ip_address(given))  # nginx's $remote_addr spelling
        except ValueError:
            raise SchemeError("client_ip is not an IP address") from None

    def _expiry_param(self, expires: int | None) -> str:
        if self.expires_arg is None:
            if expires is not None:
                raise SchemeError("this source's secure_link carries no expiry")
            return ""
        if expires is None or expires <= 0:
            raise SchemeError("this source's secure_link needs an expiry (unix seconds > 0)")
        return f"{self.expires_arg}={expires}"


def _expired(expires_at: int, request: VerifyRequest) -> bool:
    """nginx's answer: "0" only once ``expires < now`` in whole seconds, so a link still
    serves through its last second (``now == expires``); the skew widens that by its own
    seconds."""
    return request.now >= expires_at + 1 + request.clock_skew


def _find_args(uri: CanonicalURI, names: frozenset[str]) -> dict[str, QueryParam] | Reason:
    """The parameters named ``names``, each once and spelled ``name=value``; otherwise the
    reason. nginx's ``$arg_NAME`` matches the raw name in any case: a second spelling
    (``MD5=``, ``%6Dd5=``) or a repeat could make nginx and the backend read different
    values, so it is refused."""
    found: dict[str, QueryParam] = {}
    repeated = False
    for param in uri.params:
        for name in {param.name.lower(), param.raw_name.lower()} & names:
            repeated = repeated or name in found
            found[name] = param
    if repeated:
        return Reason.NON_CANONICAL
    for name, param in found.items():
        after_name = param.start + len(param.raw_name)
        if param.raw_name != name or uri.raw[after_name : after_name + 1] != "=":
            return Reason.MALFORMED
    return found


def _decode_hash(text: str) -> bytes | None:
    """The 16 MD5 bytes in base64url: unpadded (22 characters) or padded (``==``)."""
    data = URLSAFE_NOPAD.decode(text) if "=" not in text else URLSAFE.decode(text)
    return data if data is not None and len(data) == _DIGEST_SIZE else None


def _render(
    template: Iterable[Part], values: Mapping[str, str], args: Mapping[str, QueryParam]
) -> tuple[bytes | None, ...]:
    """The expression's bytes, with None where the secret goes (it differs per key)."""
    pieces: list[bytes | None] = []
    for part in template:
        if part.kind == SECRET_VAR:
            pieces.append(None)
        elif part.kind == LITERAL:
            pieces.append(part.text.encode())
        elif part.kind == ARG:
            param = args.get(part.text)
            pieces.append(b"" if param is None else param.value.encode())
        else:
            pieces.append(values[part.kind].encode())
    return tuple(pieces)


def _digest(pieces: Iterable[bytes | None], secret: bytes) -> bytes:
    return digests.md5(b"".join(secret if piece is None else piece for piece in pieces))


@dataclass(frozen=True, slots=True)
class SecureLinkSettings:
    """The two nginx directives' values, ``$secret`` standing for the key."""

    secure_link: str = setting(DEFAULT_SECURE_LINK, check=_refusal(_parse_secure_link))
    secure_link_md5: str = setting(DEFAULT_SECURE_LINK_MD5, check=_refusal(compile_template))


class SecureLinkScheme(Scheme[SecureLinkSettings]):
    name = NAME
    settings_type = SecureLinkSettings

    def settings_warnings(self, settings: SecureLinkSettings) -> list[tuple[str, str]]:
        try:
            template = compile_template(settings.secure_link_md5)
        except SchemeError:
            return []  # reported as a problem, not a weakness
        return [("secure_link_md5", weakness) for weakness in _run_together(template)]

    def build(self, spec: SourceSpec[SecureLinkSettings]) -> SecureLinkSource:
        try:
            hash_arg, expires_arg = _parse_secure_link(spec.settings.secure_link)
            template = compile_template(spec.settings.secure_link_md5)
        except SchemeError as error:
            secret_keyring(spec.keys, problems=[str(error)])  # raises, with the keys' problems
            raise
        problems = _template_problems(template, hash_arg, expires_arg)
        keyring = secret_keyring(spec.keys, problems=problems)
        return SecureLinkSource(keyring, hash_arg, expires_arg, template)


def _template_problems(
    template: tuple[Part, ...], hash_arg: str, expires_arg: str | None
) -> list[str]:
    """What would make the signature weaker than it looks: no key, no path, an expiry a
    client could change, or a hash over itself."""
    kinds = {part.kind for part in template}
    covered = {part.text for part in template if part.kind == ARG}
    problems = []
    if SECRET_VAR not in kinds:
        problems.append("secure_link_md5 must contain $secret (the key)")
    if URI not in kinds:
        problems.append("secure_link_md5 must contain $uri (the signature must name the file)")
    if expires_arg is not None and EXPIRES not in kinds and expires_arg not in covered:
        problems.append("secure_link_md5 must contain $secure_link_expires: "
                        "otherwise a client can change the expiry")  # fmt: skip
    if expires_arg is None and EXPIRES in kinds:
        problems.append("secure_link_md5 uses $secure_link_expires but secure_link has no expiry")
    if hash_arg in covered:
        problems.append(f"secure_link_md5 cannot cover $arg_{hash_arg}: it is the hash itself")
    return problems


# Values that never hold "/": a $uri (which always begins with one) written right after
# one of them cannot take characters from it or give it any.
_NO_SLASH = frozenset({EXPIRES, REMOTE_ADDR, HOST})


def _run_together(template: tuple[Part, ...]) -> list[str]:
    """Adjacent variables whose values can run into each other: the hashed text then
    splits in more than one place, so a hash made for one pair of values (a path and a
    client address) is also valid for another. nginx hashes such text alike, so it is a
    weakness to warn about, not an error. The key never moves (its value is fixed), and
    $uri after a value without "/" begins where that value ends."""
    found = []
    for left, right in itertools.pairwise(template):
        kinds = (left.kind, right.kind)
        if (
            LITERAL in kinds
            or SECRET_VAR in kinds
            or (right.kind == URI and left.kind in _NO_SLASH)
        ):
            continue
        found.append(
            f"nothing separates {_shown(left)} from {_shown(right)}: their values can run "
            "into each other, so one hash also stands for other pairs of them ($uri$remote_addr: "
            "/a.jpg for 11.2.3.4 is also /a.jpg1 for 1.2.3.4); put a character one of them "
            "never holds between them, such as a space"
        )
    return found


def _shown(part: Part) -> str:
    return f"${ARG}{part.text}" if part.kind == ARG else f"${part.kind}"


SCHEME: SecureLinkScheme = SecureLinkScheme()
