"""The validated configuration, as frozen objects the core reads (no I/O here)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from functools import cached_property

from sidecar.policy.rules import Rules
from sidecar.schemes.base import SourceScheme

# Signing API calls a second per API key (bursts of twice that): [signing] rate_limit.
SIGNING_RATE_LIMIT = 50
# (device, inode, mtime in ns, size) of a file as it was when the config read it.
FileMark = tuple[int, int, int, int]


class Mode(StrEnum):
    ENFORCE = "enforce"  # deny what does not verify
    REPORT = "report"  # verify and count, but always allow
    OFF = "off"  # signing not required for this source
    OPTIONAL = "optional"  # a signature that is present must verify; none is allowed


@dataclass(frozen=True, slots=True)
class Address:
    host: str
    port: int

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


@dataclass(frozen=True, slots=True)
class ServerSettings:
    listen: Address
    metrics_listen: Address
    workers: int = 1
    clock_skew: int = 30
    cache_ttl: int = 60
    deny_status: int = 403
    proxy: str = "nginx"  # which headers carry the original request (policy.proxies)


@dataclass(frozen=True, slots=True)
class UseLimit:
    """``max_uses``: how many uses one grant allows; requests of one client address within
    ``window`` seconds of that use's first are the same use (a download resumed)."""

    max_uses: int
    window: int = 60


@dataclass(frozen=True, slots=True)
class TracingSettings:
    """``[tracing]``: OpenTelemetry spans posted over OTLP/HTTP (docs/tracing.md)."""

    traces_url: str  # the collector's /v1/traces
    service_name: str = "signed-url-sidecar"
    sample_ratio: float = 1.0  # of the traces started here; a proxy's traceparent decides its own


@dataclass(frozen=True, slots=True)
class StateSettings:
    """``[state]``: the store shared by this host's workers (``path``, SQLite) or by a
    fleet of sidecars (``url``, Valkey or Redis); exactly one is set."""

    path: str | None = None
    url: str | None = field(default=None, repr=False)  # may carry a password
    timeout_ms: int = 50  # the longest a counted use waits for the store

    @property
    def where(self) -> str:
        """The store, named without any password (for logs and messages)."""
        if self.path is not None:
            return self.path
        scheme, _, rest = (self.url or "").partition("://")
        return f"{scheme}://{rest.rpartition('@')[2]}"


@dataclass(frozen=True, slots=True)
class SourceSettings:
    name: str
    scheme: str
    path_prefix: str
    hosts: frozenset[str] | None
    mode: Mode
    deny_status: int
    # The scheme built with this source's keys and settings: it verifies and signs its URLs
    # (None only for mode = "off" with no keys).
    signatures: SourceScheme | None
    default_ttl: int | None = None  # signing: lifetime when the caller asks for none
    max_ttl: int | None = None  # the longest lifetime signed, and accepted on verify
    rules: Rules | None = None  # where its files may be used (None: no rule, no cost)
    uses: UseLimit | None = None  # max_uses (None: uses are not counted, no cost)
    # folder_grant: the endings (".m3u8") whose URL-signed allow sets a cookie for the folder.
    folder_grant: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class TeamSettings:
    """A caller of the signing API: which source it signs for, and its API key hashes."""

    id: str
    source: str
    api_key_sha256: tuple[bytes, ...] = field(repr=False)


@dataclass(frozen=True, slots=True)
class AdminSettings:
    """The console (docs/console.md): its own listener, and the SHA-256 of each admin API key."""

    listen: Address
    api_key_sha256: tuple[bytes, ...] = field(repr=False)
    hosts: frozenset[str] = frozenset()  # names it also answers (behind a proxy), any port


@dataclass(frozen=True)  # no slots: the lookup tables below are cached on the instance
class Settings:
    path: str
    server: ServerSettings
    sources: tuple[SourceSettings, ...]
    signing_listen: Address | None = None
    teams: tuple[TeamSettings, ...] = ()
    files: tuple[str, ...] = ()  # the config and every key file it read: watched for changes
    file_marks: tuple[FileMark | None, ...] = ()  # each of ``files`` as it was read
    warnings: tuple[str, ...] = ()  # weak but working settings (short or inline secrets)
    admin: AdminSettings | None = None  # the console; off unless [admin] is configured
    signing_rate_limit: int = SIGNING_RATE_LIMIT  # per API key and process (0: no limit)
    state: StateSettings | None = None  # revocations and use counts; None: neither
    tracing: TracingSettings | None = None  # OpenTelemetry spans; None: off, and free

    def source(self, name: str) -> SourceSettings | None:
        return self._sources_by_name.get(name)

    def team(self, team_id: str) -> TeamSettings | None:
        return self._teams_by_id.get(team_id)

    # Lookups by name stay O(1) with thousands of tenants (names are unique: the loader checks).
    @cached_property
    def _sources_by_name(self) -> Mapping[str, SourceSettings]:
        return {source.name: source for source in self.sources}

    @cached_property
    def _teams_by_id(self) -> Mapping[str, TeamSettings]:
        return {team.id: team for team in self.teams}
