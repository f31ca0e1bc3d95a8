"""Load ``sidecar.toml`` into ``Settings``, reporting every problem at once.

The loader reads the key files and environment (the only I/O of configuration) and
hands the bytes to each scheme. Relative paths resolve against the config file's folder.
Secrets never appear in a message: problems name the file, the source and the field.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from sidecar import schemes
from sidecar.config.admin import parse_admin
from sidecar.config.fields import NAME, NAME_RULE, Problems, Table, address, ranged
from sidecar.config.folder_grants import FIELD as FOLDER_GRANT
from sidecar.config.folder_grants import parse_folder_grant
from sidecar.config.includes import Part, included_parts, read_toml
from sidecar.config.keys import load_keys, read_secret
from sidecar.config.rules import RULE_FIELDS, parse_rules
from sidecar.config.shadows import check_shadowing
from sidecar.config.shared_keys import warn_shared_keys
from sidecar.config.state import USE_FIELDS, check_state_needed, parse_state, parse_uses
from sidecar.config.teams import parse_teams
from sidecar.config.tracing import parse_tracing
from sidecar.config.trust import MAIN_FIELDS, KeyPlaces
from sidecar.core import canonical
from sidecar.core.urls import config_host
from sidecar.errors import ConfigError, SchemeError
from sidecar.policy.proxies import CLIENT_CHOSEN_HOST, PROFILES
from sidecar.policy.routing import hostless_beside_hosts
from sidecar.policy.settings import (
    SIGNING_RATE_LIMIT,
    Mode,
    ServerSettings,
    Settings,
    SourceSettings,
)
from sidecar.schemes.base import Scheme, SourceScheme, SourceSpec

_SERVER_FIELDS = {
    "listen", "metrics_listen", "workers", "clock_skew", "cache_ttl", "deny_status", "proxy",
}  # fmt: skip
# Every scheme's source has these; a scheme adds its own settings (``Scheme.settings``).
_SOURCE_FIELDS = {
    "name", "scheme", "path_prefix", "hosts", "mode", "deny_status", "keys",
    "default_ttl", "max_ttl", FOLDER_GRANT, *RULE_FIELDS, *USE_FIELDS,
}  # fmt: skip


def load(path: str | os.PathLike[str], *, environ: dict[str, str] | None = None) -> Settings:
    """Read and validate a config file (and the files it includes); raise ``ConfigError``
    listing every problem, each naming the file that holds it."""
    file = Path(path)
    problems = Problems(str(file))
    data = read_toml(file, problems)
    if data is None:
        raise ConfigError(problems.items)
    env = dict(os.environ) if environ is None else environ
    settings = _build(data, file, env, problems)
    if problems.items or settings is None:
        raise ConfigError(problems.items)
    return settings


def _build(
    data: dict[str, Any], file: Path, env: dict[str, str], problems: Problems
) -> Settings | None:
    folder = file.resolve().parent
    root = Table(data, "(top level)", problems)
    sections = {"server", "signing", "sources", "teams", "include", "admin", "state", "tracing"}
    root.check_names({*sections, *MAIN_FIELDS})
    server = _server(Table(root.get("server", dict, {}) or {}, "server", problems))
    signing = root.get("signing", dict)
    signing_listen, signing_rate = None, SIGNING_RATE_LIMIT
    if signing is not None:
        table = Table(signing, "signing", problems)
        table.check_names({"listen", "rate_limit"})
        signing_listen = address(table, "listen", None)
        signing_rate = ranged(table, "rate_limit", signing_rate, 0, 100_000)
    parts = [Part(root, KeyPlaces(folder), included=False),
             *included_parts(root, folder, problems)]  # fmt: skip
    raw_sources = [
        (raw, index, part) for part in parts for index, raw in enumerate(part.list("sources"))
    ]
    if not raw_sources:
        problems.add("sources", "at least one [[sources]] is required")
    sources = [
        (_source(raw, index, part.places, env, part.root.problems), part.root.problems.file)
        for raw, index, part in raw_sources
    ]
    held = [(source, file) for source, file in sources if source is not None]
    built = [source for source, _ in held]
    _check_unique(held, problems)
    _check_hosts_are_trusted(server, built, problems)
    state = parse_state(root.get("state", dict), folder, problems)
    check_state_needed(state, built, problems)
    tracing = parse_tracing(root.get("tracing", dict), problems)
    _warn_client_set_countries(server, built, problems)
    check_shadowing(held, problems.file, problems)
    warn_shared_keys(held, problems)
    for source in hostless_beside_hosts(built):
        problems.warn(
            f"sources '{source.name}'",
            f"has no hosts, and sources with hosts share its path_prefix {source.path_prefix}:"
            " a host no source names gets no_source there, not this source (nginx's default"
            " server may have caught it); list the hosts it serves in its hosts",
        )
    teams = parse_teams(parts)
    _report_duplicates(
        [(team.id, problems.file) for team in teams if team], "teams", "duplicate team id", problems
    )
    admin = parse_admin(root.get("admin", dict), problems, server=server, signing=signing_listen)
    if server is None or len(built) != len(sources) or None in teams:
        return None
    return Settings(
        str(file),
        server,
        tuple(built),
        signing_listen,
        tuple(t for t in teams if t is not None),
        files=tuple(path for path, _ in problems.files_read),
        file_marks=tuple(mark for _, mark in problems.files_read),
        warnings=tuple(problems.warnings),
        admin=admin,
        signing_rate_limit=signing_rate,
        state=state,
        tracing=tracing,
    )


def _server(table: Table) -> ServerSettings | None:
    table.check_names(_SERVER_FIELDS)
    listen = address(table, "listen", "127.0.0.1:8080")
    metrics = address(table, "metrics_listen", None) or listen
    workers = ranged(table, "workers", 1, 1, 64)
    skew = ranged(table, "clock_skew", 30, 0, 3600)
    cache_ttl = ranged(table, "cache_ttl", 60, 0, 86400)
    deny_status = _deny_status(table, 403)
    proxy = table.get("proxy", str, "nginx") or "nginx"
    table.check("proxy", proxy in PROFILES, f"must be one of {', '.join(PROFILES)}")
    if listen is None or metrics is None or proxy not in PROFILES:
        return None
    return ServerSettings(listen, metrics, workers, skew, cache_ttl, deny_status, proxy)


def _deny_status(table: Table, default: int) -> int:
    status = table.get("deny_status", int)
    if status is None:
        return default
    return (
        status
        if table.check("deny_status", status in (401, 403), "must be 401 or 403")
        else default
    )


def _source(
    raw: object, index: int, places: KeyPlaces, env: dict[str, str], problems: Problems
) -> SourceSettings | None:
    if not isinstance(raw, dict):
        problems.add(f"sources[{index}]", "must be a table")
        return None
    name = raw.get("name")
    table = Table(
        raw, f"sources[{index}]" + (f" '{name}'" if isinstance(name, str) else ""), problems
    )
    name = table.require("name", str)
    if name is not None:
        table.check("name", bool(NAME.fullmatch(name)), NAME_RULE)
    scheme_name = table.require("scheme", str)
    scheme = schemes.get(scheme_name) if scheme_name else None
    if scheme_name and scheme is None:
        table.check(
            "scheme", False, f"unknown scheme '{scheme_name}' ({', '.join(schemes.names())})"
        )
    table.check_names(_SOURCE_FIELDS | _setting_names(scheme))
    prefix = _path_prefix(table)
    hosts = _hosts(table)
    mode_text = table.get("mode", str, "enforce") or "enforce"
    mode = Mode(mode_text) if mode_text in Mode.__members__.values() else None
    table.check("mode", mode is not None, "must be enforce, optional, report or off")
    rules = parse_rules(table, mode)
    uses = parse_uses(table, mode)
    deny_status = _deny_status(table, scheme.default_deny_status if scheme else 403)
    scheme_settings = _scheme_settings(table, scheme, places, env) if scheme else None
    default_ttl, max_ttl = _ttls(table)
    if scheme is not None and not scheme.expiring:
        for lifetime in ("default_ttl", "max_ttl"):
            table.check(lifetime, lifetime not in table.data, f"{scheme.name} URLs never expire")
    keys, keys_ok = load_keys(table, places, env, scheme.key_fields if scheme else frozenset())
    signatures = None
    # Built even when some key failed, so the scheme's own problems are reported too.
    wanted = keys or mode is not Mode.OFF or not keys_ok
    if scheme is not None and prefix is not None and scheme_settings is not None and wanted:
        spec = SourceSpec(name or "", prefix, tuple(keys), scheme_settings)
        signatures = _build_scheme(table, scheme, spec, missing_reported=not keys_ok)
    folder_grant = parse_folder_grant(table, signatures, scheme_settings, uses, prefix)
    if None in (name, scheme, prefix, mode) or not keys_ok:
        return None
    if signatures is None and mode is not Mode.OFF:
        return None
    assert name and scheme_name and prefix and mode  # narrowed by the check above
    if signatures is not None and mode is not Mode.OFF and not signatures.expiry_required:
        _warn_never_expiring(table, scheme, max_ttl)
    return SourceSettings(
        name, scheme_name, prefix, hosts, mode, deny_status, signatures, default_ttl, max_ttl,
        rules, uses, folder_grant,
    )  # fmt: skip


def _warn_never_expiring(table: Table, scheme: Scheme[Any] | None, max_ttl: int | None) -> None:
    """A source that allows URLs without an expiry: one leaked URL works until its key is
    rotated. ``max_ttl`` closes it (enforced on verify: no expiry is ``missing``)."""
    if scheme is not None and not scheme.expiring:
        table.problems.warn(
            table.where,
            f"{scheme.name} URLs carry no expiry: a leaked URL works until its key is rotated",
        )
    elif max_ttl is None:
        table.problems.warn(
            table.where,
            "allows URLs without an expiry (a leaked one works until its key is rotated): "
            "set max_ttl (enforced on verify), or require_expires = true where the scheme "
            "has it",
        )


def _setting_names(scheme: Scheme[Any] | None) -> set[str]:
    # With an unknown scheme, any scheme's setting is not reported as a second problem.
    known = [scheme] if scheme is not None else list(schemes.REGISTRY.values())
    names = set()
    for setting in (setting for entry in known for setting in entry.settings):
        names.add(setting.name)
        if setting.secret:
            names |= {f"{setting.name}_file", f"{setting.name}_env"}
    return names


def _scheme_settings(
    table: Table, scheme: Scheme[Any], places: KeyPlaces, env: dict[str, str]
) -> object:
    """The scheme's settings object, every problem with them reported (a setting with
    one takes its default, so the scheme's own problems are reported too)."""
    values: dict[str, object] = {}
    for setting in scheme.settings:
        if setting.secret:
            values[setting.name] = _secret_setting(table, setting.name, places, env)
        else:
            values[setting.name] = table.get(setting.name, setting.kind)
    built, problems = scheme.settings_from(values)
    for name, problem in problems:
        table.check(name, False, problem)
    for name, weakness in scheme.settings_warnings(built):
        table.problems.warn(f"{table.where}: {name}", weakness)
    return built


def _secret_setting(table: Table, name: str, places: KeyPlaces, env: dict[str, str]) -> str | None:
    """A secret setting from at most one of ``name_file``, ``name_env`` or ``name``."""
    given = [field for field in (f"{name}_file", f"{name}_env", name) if field in table.data]
    if not table.check(name, len(given) <= 1, f"give one of {name}_file, {name}_env, {name}"):
        return None
    secret = read_secret(table, given[0], places, env) if given else None
    if secret is None:
        return None
    try:
        return secret.decode("utf-8")
    except UnicodeDecodeError:
        table.check(given[0], False, "is not UTF-8 text")
        return None


def _ttls(table: Table) -> tuple[int | None, int | None]:
    default_ttl = table.get("default_ttl", int)
    max_ttl = table.get("max_ttl", int)
    for name, value in (("default_ttl", default_ttl), ("max_ttl", max_ttl)):
        if value is not None:
            table.check(name, 1 <= value <= 366 * 86400, "must be 1 second .. 366 days")
    if default_ttl is not None and max_ttl is not None:
        table.check("default_ttl", default_ttl <= max_ttl, "must not exceed max_ttl")
    return default_ttl, max_ttl


def _build_scheme(
    table: Table, scheme: Scheme[Any], spec: SourceSpec[Any], *, missing_reported: bool
) -> SourceScheme | None:
    if not spec.keys and not scheme.fetches_keys(spec.settings):
        if not missing_reported:
            table.check("keys", False, "at least one [[sources.keys]] is required (fail closed)")
        return None
    try:
        return scheme.build(spec)
    except SchemeError as error:
        table.check("keys", False, str(error))
        return None


def _path_prefix(table: Table) -> str | None:
    prefix = table.require("path_prefix", str)
    if prefix is None:
        return None
    if not table.check(
        "path_prefix", canonical.is_canonical_path(prefix), "must be a canonical path"
    ):
        return None
    return prefix


def _hosts(table: Table) -> frozenset[str] | None:
    hosts = table.get("hosts", list)
    if hosts is None:
        return None
    # Each in the one spelling requests are routed on (docs/security.md, "Hosts"): written
    # so already, or an IPv6 literal (with or without brackets), kept in its compressed form.
    valid = [spelling for h in hosts if isinstance(h, str) and (spelling := config_host(h))]
    table.check(
        "hosts",
        len(valid) == len(hosts) and bool(hosts),
        "must be a list of host names (lowercase ASCII, no port, no trailing dot) or IP addresses",
    )
    return frozenset(valid)


def _check_unique(sources: list[tuple[SourceSettings, str]], problems: Problems) -> None:
    """Names, routes and URL-carried key ids are unique, across every included file."""
    _report_duplicates(
        [(s.name, file) for s, file in sources], "sources", "duplicate source name", problems
    )
    routes = [
        (f"{host} {source.path_prefix.rstrip('/') or '/'}", file)
        for source, file in sources
        for host in (sorted(source.hosts) if source.hosts else ["*"])
    ]
    _report_duplicates(routes, "sources", "two sources share host and path_prefix", problems)
    # A key id the URL carries (CloudFront's Key-Pair-Id) names one key of one source.
    url_key_ids = [
        (key_id, file)
        for source, file in sources
        if source.signatures and _scheme_of(source).key_ids_in_url
        for key_id in source.signatures.key_ids
    ]
    _report_duplicates(
        url_key_ids, "sources", "key id carried in URLs used by two sources", problems
    )


def _scheme_of(source: SourceSettings) -> Scheme[Any]:
    scheme = schemes.get(source.scheme)
    assert scheme is not None  # a built source has a registered scheme
    return scheme


def _warn_client_set_countries(
    server: ServerSettings | None, sources: list[SourceSettings], problems: Problems
) -> None:
    """Only the shipped nginx snippet sets X-Country-Code itself; the other proxies pass
    the client's headers on, where a client could name its own country."""
    if server is None or server.proxy == "nginx":
        return
    for source in sources:
        rules = source.rules
        if rules is not None and (rules.countries or rules.countries_blocked) is not None:
            problems.warn(
                f"sources '{source.name}'",
                f"countries are read from X-Country-Code, which proxy = '{server.proxy}' "
                "passes on as the client sent it unless the proxy sets it itself: have it "
                "overwrite X-Country-Code (docs/configuration.md, Rules)",
            )


def _check_hosts_are_trusted(
    server: ServerSettings | None, sources: list[SourceSettings], problems: Problems
) -> None:
    # docs/security.md, "Hosts": hosts decide routing only on a host the proxy itself routed on.
    if server is None or server.proxy not in CLIENT_CHOSEN_HOST:
        return
    for source in sources:
        if source.hosts is not None:
            problems.add(
                f"source '{source.name}'.hosts",
                f"proxy = '{server.proxy}' passes the client's own Host header"
                " (X-Original-URL is built from $http_host): route by path_prefix instead,"
                " or put the shipped nginx config (proxy = 'nginx') in front",
            )


def _report_duplicates(
    values: list[tuple[str, str]], where: str, message: str, problems: Problems
) -> None:
    """Each value seen more than once, with the files holding it when they differ."""
    files: dict[str, list[str]] = {}
    for value, file in values:  # linear: configs hold thousands of sources
        files.setdefault(value, []).append(file)
    for value in sorted(value for value, held in files.items() if len(held) > 1):
        places = sorted(set(files[value]))
        suffix = f" (in {', '.join(places)})" if len(places) > 1 else ""
        problems.add(where, f"{message}: {value}{suffix}")
