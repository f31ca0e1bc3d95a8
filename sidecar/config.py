"""Load ``sidecar.toml`` into ``Settings``, reporting every problem at once.

The loader reads the key files and environment (the only I/O of configuration) and
hands the bytes to each scheme. Relative paths resolve against the config file's folder.
Secrets never appear in a message: problems name the file, the source and the field.
"""

from __future__ import annotations

import os
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from sidecar import canonical, schemes
from sidecar.proxies import PROFILES
from sidecar.schemes import KeyMaterial, SchemeError, SchemeOptions
from sidecar.settings import (
    Address,
    Mode,
    ServerSettings,
    Settings,
    SourceSettings,
    TeamSettings,
)

T = TypeVar("T")

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
_HOST = re.compile(r"[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*")
_SHA256_HEX = re.compile(r"[0-9a-fA-F]{64}")
_ORIGIN = re.compile(r"https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?")
_SERVER_FIELDS = {
    "listen", "metrics_listen", "workers", "clock_skew", "cache_ttl", "deny_status", "proxy",
}  # fmt: skip
_SOURCE_FIELDS = {
    "name", "scheme", "path_prefix", "hosts", "mode", "deny_status", "public_origin", "keys",
    "default_ttl", "max_ttl",
}  # fmt: skip
_KEY_FIELDS = {
    "id", "secret", "secret_file", "secret_env", "public_key_file", "private_key_file",
}  # fmt: skip
_SECRET_SOURCES = ("secret_file", "secret_env", "secret")


class ConfigError(Exception):
    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


@dataclass
class _Problems:
    """What one load collects: every problem, and every file it read (to watch them)."""

    file: str
    items: list[str] = field(default_factory=list)
    files_read: list[str] = field(default_factory=list)

    def add(self, where: str, message: str) -> None:
        self.items.append(f"{self.file}: {where}: {message}")


@dataclass
class _Table:
    """A TOML table read field by field, type-checked, unknown names reported."""

    data: dict[str, Any]
    where: str
    problems: _Problems

    def check_names(self, allowed: set[str]) -> None:
        for name in sorted(set(self.data) - allowed):
            self.problems.add(self.where, f"unknown field '{name}'")

    def get(self, name: str, kind: type[T], default: T | None = None) -> T | None:
        value = self.data.get(name)
        if value is None:
            return default
        # bool is an int in Python; a config "workers = true" is still a type error.
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            self.problems.add(f"{self.where}.{name}", f"must be a {kind.__name__}")
            return default
        return value

    def require(self, name: str, kind: type[T]) -> T | None:
        if name not in self.data:
            self.problems.add(f"{self.where}.{name}", "is required")
            return None
        return self.get(name, kind)

    def check(self, name: str, ok: bool, message: str) -> bool:
        if not ok:
            self.problems.add(f"{self.where}.{name}", message)
        return ok


def load(path: str | os.PathLike[str], *, environ: dict[str, str] | None = None) -> Settings:
    """Read and validate a config file; raise ``ConfigError`` listing every problem."""
    file = Path(path)
    problems = _Problems(str(file))
    try:
        data = tomllib.loads(file.read_text(encoding="utf-8"))
    except OSError as error:
        raise ConfigError([f"{file}: cannot read: {error.strerror}"]) from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise ConfigError([f"{file}: not valid TOML: {error}"]) from None
    env = dict(os.environ) if environ is None else environ
    settings = _build(data, file, env, problems)
    if problems.items or settings is None:
        raise ConfigError(problems.items)
    return settings


def _build(
    data: dict[str, Any], file: Path, env: dict[str, str], problems: _Problems
) -> Settings | None:
    folder = file.resolve().parent
    root = _Table(data, "(top level)", problems)
    root.check_names({"server", "signing", "sources", "teams"})
    server = _server(_Table(root.get("server", dict, {}) or {}, "server", problems))
    signing = root.get("signing", dict)
    signing_listen = None
    if signing is not None:
        table = _Table(signing, "signing", problems)
        table.check_names({"listen"})
        signing_listen = _address(table, "listen", None)
    raw_sources = root.get("sources", list, []) or []
    if not raw_sources:
        problems.add("sources", "at least one [[sources]] is required")
    sources = [_source(raw, index, folder, env, problems) for index, raw in enumerate(raw_sources)]
    built = [source for source in sources if source is not None]
    _check_unique(built, problems)
    names = {source.name for source in sources if source is not None}
    raw_teams = root.get("teams", list, []) or []
    teams = [_team(raw, index, names, problems) for index, raw in enumerate(raw_teams)]
    _report_duplicates([t.id for t in teams if t], "teams", "duplicate team id", problems)
    if server is None or len(built) != len(sources) or None in teams:
        return None
    return Settings(
        str(file),
        server,
        tuple(built),
        signing_listen,
        tuple(t for t in teams if t is not None),
        files=(str(file), *problems.files_read),
    )


def _server(table: _Table) -> ServerSettings | None:
    table.check_names(_SERVER_FIELDS)
    listen = _address(table, "listen", "127.0.0.1:8080")
    metrics = _address(table, "metrics_listen", None) or listen
    workers = _ranged(table, "workers", 1, 1, 64)
    skew = _ranged(table, "clock_skew", 30, 0, 3600)
    cache_ttl = _ranged(table, "cache_ttl", 60, 0, 86400)
    deny_status = _deny_status(table, 403)
    proxy = table.get("proxy", str, "nginx") or "nginx"
    table.check("proxy", proxy in PROFILES, f"must be one of {', '.join(PROFILES)}")
    if listen is None or metrics is None or proxy not in PROFILES:
        return None
    return ServerSettings(listen, metrics, workers, skew, cache_ttl, deny_status, proxy)


def _ranged(table: _Table, name: str, default: int, low: int, high: int) -> int:
    """An integer field within [low, high]; out of range is a problem (0 included)."""
    value = table.get(name, int)
    if value is None:
        return default
    return value if table.check(name, low <= value <= high, f"must be {low}..{high}") else default


def _address(table: _Table, name: str, default: str | None) -> Address | None:
    text = table.get(name, str, default)
    if text is None:
        return None
    host, sep, port = text.rpartition(":")
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        table.check(name, False, f"'{text}' is not host:port")
        return None
    return Address(host, int(port))


def _deny_status(table: _Table, default: int) -> int:
    status = table.get("deny_status", int)
    if status is None:
        return default
    return (
        status
        if table.check("deny_status", status in (401, 403), "must be 401 or 403")
        else default
    )


def _source(
    raw: object, index: int, folder: Path, env: dict[str, str], problems: _Problems
) -> SourceSettings | None:
    if not isinstance(raw, dict):
        problems.add(f"sources[{index}]", "must be a table")
        return None
    name = raw.get("name")
    table = _Table(
        raw, f"sources[{index}]" + (f" '{name}'" if isinstance(name, str) else ""), problems
    )
    table.check_names(_SOURCE_FIELDS)
    name = table.require("name", str)
    if name is not None:
        table.check("name", bool(_NAME.fullmatch(name)), "letters, digits, '_', '.', '-' only")
    scheme_name = table.require("scheme", str)
    scheme = schemes.get(scheme_name) if scheme_name else None
    if scheme_name and scheme is None:
        table.check(
            "scheme", False, f"unknown scheme '{scheme_name}' ({', '.join(schemes.names())})"
        )
    prefix = _path_prefix(table)
    hosts = _hosts(table)
    mode_text = table.get("mode", str, "enforce") or "enforce"
    mode = Mode(mode_text) if mode_text in Mode.__members__.values() else None
    table.check("mode", mode is not None, "must be enforce, report or off")
    deny_status = _deny_status(table, scheme.default_deny_status if scheme else 403)
    origin = table.get("public_origin", str)
    if origin is not None:
        table.check(
            "public_origin", bool(_ORIGIN.fullmatch(origin)), "must be http(s)://host[:port]"
        )
    default_ttl, max_ttl = _ttls(table)
    keys, keys_ok = _keys(table, folder, env, scheme.key_fields if scheme else frozenset())
    verifier = None
    # Built even when some key failed, so the scheme's own problems are reported too.
    if scheme is not None and (keys or mode is not Mode.OFF or not keys_ok):
        options = SchemeOptions(public_origin=origin)
        verifier = _verifier(table, scheme, keys, options, missing_reported=not keys_ok)
    if None in (name, scheme, prefix, mode) or not keys_ok:
        return None
    if verifier is None and mode is not Mode.OFF:
        return None
    assert name and scheme_name and prefix and mode  # narrowed by the check above
    return SourceSettings(
        name, scheme_name, prefix, hosts, mode, deny_status, verifier, origin, default_ttl, max_ttl
    )


def _ttls(table: _Table) -> tuple[int | None, int | None]:
    default_ttl = table.get("default_ttl", int)
    max_ttl = table.get("max_ttl", int)
    for name, value in (("default_ttl", default_ttl), ("max_ttl", max_ttl)):
        if value is not None:
            table.check(name, 1 <= value <= 366 * 86400, "must be 1 second .. 366 days")
    if default_ttl is not None and max_ttl is not None:
        table.check("default_ttl", default_ttl <= max_ttl, "must not exceed max_ttl")
    return default_ttl, max_ttl


def _team(raw: object, index: int, sources: set[str], problems: _Problems) -> TeamSettings | None:
    table = _Table(raw if isinstance(raw, dict) else {}, f"teams[{index}]", problems)
    table.check_names({"id", "source", "api_key_sha256"})
    team_id = table.require("id", str)
    if team_id is not None:
        table.check("id", bool(_NAME.fullmatch(team_id)), "letters, digits, '_', '.', '-' only")
    source = table.require("source", str)
    if source is not None:
        table.check("source", source in sources, f"no source named '{source}'")
    hashes = table.require("api_key_sha256", list) or []
    valid = [bytes.fromhex(h) for h in hashes if isinstance(h, str) and _SHA256_HEX.fullmatch(h)]
    table.check(
        "api_key_sha256",
        bool(hashes) and len(valid) == len(hashes),
        "must be a non-empty list of hex SHA-256 digests (sidecar token api-key)",
    )
    if not team_id or not source or source not in sources or len(valid) != len(hashes) or not valid:
        return None
    return TeamSettings(team_id, source, tuple(valid))


def _verifier(
    table: _Table,
    scheme: schemes.Scheme,
    keys: list[KeyMaterial],
    options: SchemeOptions,
    *,
    missing_reported: bool,
) -> schemes.SourceVerifier | None:
    if not keys:
        if not missing_reported:
            table.check("keys", False, "at least one [[sources.keys]] is required (fail closed)")
        return None
    try:
        return scheme.build(keys, options)
    except SchemeError as error:
        table.check("keys", False, str(error))
        return None


def _path_prefix(table: _Table) -> str | None:
    prefix = table.require("path_prefix", str)
    if prefix is None:
        return None
    if not table.check(
        "path_prefix", canonical.is_canonical_path(prefix), "must be a canonical path"
    ):
        return None
    return prefix


def _hosts(table: _Table) -> frozenset[str] | None:
    hosts = table.get("hosts", list)
    if hosts is None:
        return None
    valid = [h for h in hosts if isinstance(h, str) and _HOST.fullmatch(h.lower())]
    table.check("hosts", len(valid) == len(hosts) and bool(hosts), "must be a list of host names")
    return frozenset(h.lower() for h in valid)


def _keys(
    table: _Table, folder: Path, env: dict[str, str], accepted: frozenset[str]
) -> tuple[list[KeyMaterial], bool]:
    """The keys that loaded, and whether every configured key did."""
    raw_keys = table.get("keys", list, []) or []
    keys: list[KeyMaterial] = []
    ok = True
    for index, raw in enumerate(raw_keys):
        key = _key(_Table(raw if isinstance(raw, dict) else {}, f"{table.where}.keys[{index}]",
                          table.problems), folder, env, accepted)  # fmt: skip
        ok = ok and key is not None
        if key is not None:
            keys.append(key)
    ids = [key.id for key in keys]
    duplicated = sorted({i for i in ids if ids.count(i) > 1})
    ok = table.check("keys", not duplicated, f"duplicate key id {duplicated}") and ok
    return keys, ok


def _key(
    table: _Table, folder: Path, env: dict[str, str], accepted: frozenset[str]
) -> KeyMaterial | None:
    table.check_names(_KEY_FIELDS)
    key_id = table.require("id", str)
    if key_id is not None:
        table.check("id", bool(_NAME.fullmatch(key_id)), "letters, digits, '_', '.', '-' only")
    given = [name for name in _SECRET_SOURCES if name in table.data]
    secret = None
    if "secret" in accepted:
        if table.check(
            "secret", len(given) == 1, "give exactly one of secret_file, secret_env, secret"
        ):
            secret = _secret(table, given[0], folder, env)
    elif given:
        table.check(given[0], False, "not used by this scheme")
    public = _pem(table, "public_key_file", folder, required="public_key" in accepted)
    private = _pem(table, "private_key_file", folder, required=False)
    if "public_key" not in accepted:
        for name in ("public_key_file", "private_key_file"):
            table.check(name, name not in table.data, "not used by this scheme")
    if key_id is None or ("secret" in accepted and not secret):
        return None
    if "public_key" in accepted and public is None:
        return None
    return KeyMaterial(key_id, secret=secret, public_key_pem=public, private_key_pem=private)


def _secret(table: _Table, kind: str, folder: Path, env: dict[str, str]) -> bytes | None:
    value = table.get(kind, str)
    if value is None:
        return None
    if kind == "secret_file":
        secret = _read(table, kind, folder / value)
    elif kind == "secret_env":
        found = env.get(value)
        table.check(kind, found is not None, f"environment variable '{value}' is not set")
        secret = found.encode() if found is not None else None
    else:
        secret = value.encode()
    # Mounted files usually end with a newline the signer never saw.
    secret = secret.rstrip(b"\r\n") if secret is not None else None
    if secret is not None and not table.check(kind, bool(secret), "is empty"):
        return None
    return secret


def _pem(table: _Table, name: str, folder: Path, *, required: bool) -> bytes | None:
    value = table.get(name, str)
    if value is None:
        table.check(name, not required, "is required")
        return None
    return _read(table, name, folder / value)


def _read(table: _Table, name: str, path: Path) -> bytes | None:
    table.problems.files_read.append(str(path))
    try:
        return path.read_bytes()
    except OSError as error:
        table.check(name, False, f"cannot read {path} ({error.strerror})")
        return None


def _check_unique(sources: list[SourceSettings], problems: _Problems) -> None:
    _report_duplicates([s.name for s in sources], "sources", "duplicate source name", problems)
    routes = [
        f"{host} {source.path_prefix.rstrip('/') or '/'}"
        for source in sources
        for host in (sorted(source.hosts) if source.hosts else ["*"])
    ]
    _report_duplicates(routes, "sources", "two sources share host and path_prefix", problems)
    # A CloudFront Key-Pair-Id names one key of one source: never ambiguous.
    key_pair_ids = [
        key_id
        for source in sources
        if source.scheme == "cloudfront" and source.verifier
        for key_id in source.verifier.key_ids
    ]
    _report_duplicates(key_pair_ids, "sources", "Key-Pair-Id used by two sources", problems)


def _report_duplicates(values: list[str], where: str, message: str, problems: _Problems) -> None:
    for value in sorted({v for v in values if values.count(v) > 1}):
        problems.add(where, f"{message}: {value}")
