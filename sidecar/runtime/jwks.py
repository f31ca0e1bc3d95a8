"""The JWKS fetcher: the key sets of ``jwt`` sources' ``jwks_url``, fetched off the verify
loop and handed to the sources whole (docs/schemes/jwt.md, "Fetching jwks_url").

Each URL is fetched at start, every ``jwks_refresh`` seconds, and when a token names a
``kid`` no key has, at most once per ``jwks_cooldown``. The body is read with aiohttp
(awaited, never blocking the loop) and parsed in the offload pool (building RSA and EC
keys costs milliseconds). A fetch that fails keeps the last good set; a reload hands the
new config's sources the last good set of their URL before any request reaches them.
Nothing of a set, a token or a key is logged: the source, the URL's host, the outcome.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import weakref
from collections.abc import Iterator
from urllib.parse import urlsplit

import aiohttp
from prometheus_client import CollectorRegistry, Counter

from sidecar.policy.settings import Settings, SourceSettings
from sidecar.runtime.state import State
from sidecar.schemes.jwt import JwtSource
from sidecar.schemes.jwt_keys import MAX_JWKS_BYTES, JwtKey, parse_jwks

FETCH_TIMEOUT = 5.0  # seconds for one whole fetch
TICK = 1.0  # how often due fetches are looked for (a wanted kid wakes the loop sooner)
_COUNTERS: weakref.WeakKeyDictionary[CollectorRegistry, Counter] = weakref.WeakKeyDictionary()


def fetches_counter(registry: CollectorRegistry) -> Counter:
    """``signed_url_jwks_fetches_total{source, result}``, one per registry."""
    counter = _COUNTERS.get(registry)
    if counter is None:
        counter = _COUNTERS[registry] = Counter(
            "signed_url_jwks_fetches",
            "Fetches of jwt sources' jwks_url by source and result (success or failure); "
            "a failure keeps the last good key set.",
            ["source", "result"],
            registry=registry,
        )
    return counter


class FetchFailedError(Exception):
    """Why one fetch gave no usable set (words only: never the body)."""


class JwksFetcher:
    def __init__(self, state: State) -> None:
        self._state = state
        self._sets: dict[str, dict[str, JwtKey]] = {}  # url → its last good set, by kid
        self._fetched: dict[str, float] = {}  # url → monotonic time of its last fetch
        self._wanted: set[str] = set()  # urls a token asked about with an unknown kid
        self._wake = asyncio.Event()
        self._counter = fetches_counter(state.metrics.registry)

    # --- the sources' side --------------------------------------------------------------

    def adopt(self, settings: Settings) -> None:
        """Give each source of ``settings`` with a ``jwks_url`` its URL's last good set and
        the way to ask for a fresh one (called before the settings serve)."""
        for source, scheme in _url_sources(settings):
            url = scheme.settings.jwks_url
            for result in ("success", "failure"):
                self._counter.labels(source.name, result)
            scheme.remote.by_id = self._sets.get(url, {})
            scheme.remote.on_unknown_kid = lambda url=url: self._want(url)

    def _want(self, url: str) -> None:
        if url not in self._wanted:
            self._wanted.add(url)
            self._wake.set()

    # --- the fetching side --------------------------------------------------------------

    async def run(self) -> None:
        """Fetch what is due, for ever (cancelled when the process stops)."""
        self.adopt(self._state.decider.settings)
        timeout = aiohttp.ClientTimeout(total=FETCH_TIMEOUT)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            while True:
                for url in self._due(self._state.decider.settings, time.monotonic()):
                    await self._fetch(session, url)
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), TICK)

    def _due(self, settings: Settings, now: float) -> list[str]:
        """Each URL whose refresh is due, or whose cooldown has passed since a token named
        a kid it lacks."""
        refresh: dict[str, int] = {}
        cooldown: dict[str, int] = {}
        for _, scheme in _url_sources(settings):
            url, own = scheme.settings.jwks_url, scheme.settings
            refresh[url] = min(refresh.get(url, own.jwks_refresh), own.jwks_refresh)
            cooldown[url] = min(cooldown.get(url, own.jwks_cooldown), own.jwks_cooldown)
        due = []
        for url, every in refresh.items():
            since = now - self._fetched.get(url, float("-inf"))
            if since >= every or (url in self._wanted and since >= cooldown[url]):
                due.append(url)
        return due

    async def _fetch(self, session: aiohttp.ClientSession, url: str) -> None:
        self._fetched[url] = time.monotonic()
        self._wanted.discard(url)
        state = self._state
        try:
            body = await _download(session, url)
            found = await state.off_loop(parse_jwks, body)
            if isinstance(found, str):
                raise FetchFailedError(found)
        except (FetchFailedError, aiohttp.ClientError, TimeoutError, ValueError) as error:
            self._count(url, "failure")
            state.log.event("jwks_fetch_failed", level="warning", host=_host(url),
                            sources=self._names(url), error=_why(error))  # fmt: skip
            return
        self._sets[url] = {key.id: key for key in found.keys}
        self._count(url, "success")
        self.adopt(state.decider.settings)
        state.log.event("jwks_fetched", host=_host(url), sources=self._names(url),
                        keys=len(found.keys), left_out=len(found.skipped))  # fmt: skip

    def _count(self, url: str, result: str) -> None:
        for name in self._names(url):
            self._counter.labels(name, result).inc()

    def _names(self, url: str) -> list[str]:
        settings = self._state.decider.settings
        return [source.name for source, scheme in _url_sources(settings)
                if scheme.settings.jwks_url == url]  # fmt: skip


async def _download(session: aiohttp.ClientSession, url: str) -> bytes:
    """The body of a 200 answer, at most ``MAX_JWKS_BYTES`` (a bigger one is refused)."""
    async with session.get(url, allow_redirects=False) as response:
        if response.status != 200:
            raise FetchFailedError(f"answered {response.status}")
        body = bytearray()
        async for chunk in response.content.iter_chunked(16384):
            body += chunk
            if len(body) > MAX_JWKS_BYTES:
                raise FetchFailedError(f"over {MAX_JWKS_BYTES // 1024} KB")
        return bytes(body)


def _url_sources(settings: Settings) -> Iterator[tuple[SourceSettings, JwtSource]]:
    for source in settings.sources:
        scheme = source.signatures
        if isinstance(scheme, JwtSource) and scheme.settings.jwks_url:
            yield source, scheme


def _host(url: str) -> str:
    return urlsplit(url).hostname or ""


def _why(error: BaseException) -> str:
    if isinstance(error, FetchFailedError):
        return str(error)[:200]
    if isinstance(error, TimeoutError):
        return f"no answer within {FETCH_TIMEOUT:g} s"
    return type(error).__name__
