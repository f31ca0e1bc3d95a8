"""``folder_grant`` in the decision (policy/folder_grants) and on the verify listener
(runtime/folder_cookies): which allows carry a folder, and how their cookies are answered:
signed once per (source, folder, expiry), in order with pipelined requests."""

from __future__ import annotations

import asyncio
import io
import time
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from bench.tools import paced_load
from sidecar import config
from sidecar.policy.decide import Decider, Outcome, RequestFacts
from sidecar.policy.folder_grants import FolderGrant
from sidecar.policy.settings import Settings
from sidecar.policy.signing import sign, sign_url
from sidecar.runtime.folder_cookies import header_lines
from sidecar.runtime.logs import JsonLog
from sidecar.runtime.state import create_state
from sidecar.runtime.verify_protocol import VerifyProtocol, VerifyServer
from sidecar.schemes.base import Grant
from tests.support.configs import TomlValue, sidecar_config, source_toml

ORIGIN = "https://image.example.com"
KEYS = {"g1": {"secret": "N3yAAtXbJ8oKd1_qzR0v-w=="}}
GRANTING: dict[str, TomlValue] = {"accept_cookies": True, "folder_grant": [".m3u8"]}
CONFIG = sidecar_config(
    source_toml("g", "gcdn", "/g/", KEYS, public_origin=ORIGIN, **GRANTING),
    source_toml(
        "r", "gcdn", "/r/", {"r1": KEYS["g1"]}, public_origin=ORIGIN, mode="report", **GRANTING
    ),
    server={"clock_skew": 30},
)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    (tmp_path / "sidecar.toml").write_text(CONFIG)
    return config.load(tmp_path / "sidecar.toml")


def signed(settings: Settings, path: str, now: float, expires_in: int = 600) -> str:
    source = path.split("/")[1]
    return sign_url(settings, source, ORIGIN + path, now=now, expires_in=expires_in).removeprefix(
        ORIGIN
    )


def facts(uri: str, cookies: str | None = None) -> RequestFacts:
    return RequestFacts(uri, "GET", "image.example.com", cookies=cookies)


def folder_cookie(settings: Settings, folder: str, now: float) -> str:
    grant = Grant(prefix=folder, cookies=True)
    made = sign(settings, "g", ORIGIN + folder, grant, now=now, expires_in=600)
    return made.cookies[0].split(";", 1)[0]


def test_a_url_signed_playlist_carries_its_folder_and_is_never_cached(settings: Settings) -> None:
    now = time.time()
    decision = Decider(settings).decide(facts(signed(settings, "/g/v1/index.m3u8", now)), now)
    assert decision.folder == FolderGrant("/g/v1/", int(now) + 600)
    assert (decision.status, decision.cache_ttl) == (200, 0)
    image = Decider(settings).decide(facts(signed(settings, "/g/v1/seg0.ts", now)), now)
    assert image.folder is None and image.cache_ttl > 0


def test_no_folder_for_a_cookie_won_or_just_expired_playlist(settings: Settings) -> None:
    now, decider = time.time(), Decider(settings)
    cookie = folder_cookie(settings, "/g/v1/", now)
    by_cookie = decider.decide(facts("/g/v1/sub/index.m3u8", cookie), now)
    assert (by_cookie.status, by_cookie.folder) == (200, None)
    # Expired ten seconds ago, still allowed within the 30 s clock skew: no cookie is born.
    late = decider.decide(facts(signed(settings, "/g/v1/index.m3u8", now - 610)), now)
    assert (late.status, late.folder) == (200, None)


@pytest.mark.parametrize("folder", ["/g/a*b/", "/g/a(b)/", "/g/a,b/", "/g/a!b/"])
def test_no_folder_named_with_a_wildcard_or_sub_delimiter(settings: Settings, folder: str) -> None:
    now = time.time()
    uri = signed(settings, folder + "index.m3u8", now)
    decision = Decider(settings).decide(facts(uri), now)
    assert (decision.status, decision.folder) == (200, None)


def test_a_url_bound_to_an_address_binds_its_folder_to_it(tmp_path: Path) -> None:
    keys = {"a1": {"secret": "ab" * 32}}
    text = sidecar_config(source_toml("ak", "akamai", "/ak/", keys, **GRANTING))
    (tmp_path / "sidecar.toml").write_text(text)
    settings, now = config.load(tmp_path / "sidecar.toml"), time.time()
    uri = sign_url(settings, "ak", "/ak/v1/index.m3u8", now=now, expires_in=600,
                   client_ip="203.0.113.5")  # fmt: skip
    bound = RequestFacts(uri, "GET", "image.example.com", client_ip="203.0.113.5")
    decision = Decider(settings).decide(bound, now)
    assert decision.folder == FolderGrant("/ak/v1/", int(now) + 600, "203.0.113.5")


def test_the_url_decides_whatever_cookie_comes_with_it(settings: Settings) -> None:
    now, decider = time.time(), Decider(settings)
    other = folder_cookie(settings, "/g/v2/", now)
    uri = signed(settings, "/g/v1/index.m3u8", now)
    assert decider.decide(facts(uri, f"a=1; {other}"), now).folder == FolderGrant(
        "/g/v1/", int(now) + 600
    )
    denied = decider.decide(facts("/g/v1/index.m3u8", other), now)
    assert (denied.status, denied.folder) == (403, None)


def test_a_report_mode_would_deny_grants_nothing(settings: Settings) -> None:
    now = time.time()
    uri = signed(settings, "/r/v1/index.m3u8", now)
    decision = Decider(settings).decide(facts(uri[:-3] + "AAA"), now)
    assert (decision.outcome, decision.folder) == (Outcome.WOULD_DENY, None)


def test_each_cookie_has_a_header_the_snippet_forwards() -> None:
    lines = header_lines(("a=1; Path=/x/", "b=2; Path=/x/", "c=3; Path=/x/"))
    assert lines.split(b"\r\n") == [b"Set-Cookie: a=1; Path=/x/", b"X-Set-Cookie-2: b=2; Path=/x/",
                                    b"X-Set-Cookie-3: c=3; Path=/x/", b""]  # fmt: skip
    with pytest.raises(ValueError, match="more grant cookies"):
        header_lines(("a=1",) * 4)


class Transport:
    def __init__(self) -> None:
        self.written: list[bytes] = []

    def write(self, data: bytes) -> None:
        self.written.append(data)

    def close(self) -> None: ...

    def pause_reading(self) -> None: ...

    def resume_reading(self) -> None: ...


async def test_cookies_are_signed_once_and_answers_keep_their_order(settings: Settings) -> None:
    state = create_state(settings, registry=CollectorRegistry(), log=JsonLog(io.BytesIO()))
    protocol, transport = VerifyProtocol(VerifyServer(state, serve_metrics=False)), Transport()
    protocol.connection_made(transport)  # type: ignore[arg-type]
    playlist = signed(settings, "/g/v1/index.m3u8", time.time())
    protocol.data_received(
        paced_load.verify_request(playlist) + paced_load.verify_request("/g/v1/seg0.ts")
    )
    assert transport.written == []  # the cookie is being signed; nothing overtakes it
    while len(transport.written) < 2:
        await asyncio.sleep(0.01)
    first, unsigned = transport.written
    assert b"\r\nSet-Cookie: Cloud-CDN-Cookie=" in first and b"Path=/g/v1/;" in first
    assert b" 403 " in unsigned and b"Set-Cookie" not in unsigned
    protocol.data_received(paced_load.verify_request(playlist))  # kept: answered at once
    assert len(transport.written) == 3 and transport.written[2] == first
