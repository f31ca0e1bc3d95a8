"""The two stores behind ``[state]`` (sidecar/runtime/store_sqlite.py, store_redis.py),
against a real SQLite file and a real redis-server: the same behaviour from both, exact
use counts under concurrency from several connections (as several processes make them),
the change feed, and the faults a store has (corrupt, locked, unreachable)."""

from __future__ import annotations

import asyncio
import io
import sqlite3
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from sidecar.core.verdict import Reason, allow
from sidecar.errors import StoreError
from sidecar.policy.decide import Decision, Outcome
from sidecar.policy.revocations import Kind, new_revocation
from sidecar.policy.settings import Mode, SourceSettings, StateSettings, UseLimit
from sidecar.runtime.logs import JsonLog
from sidecar.runtime.revocation_sync import StateMetrics
from sidecar.runtime.stores import Store, open_store, use_key
from sidecar.runtime.uses import UseCounter
from tests.support.redis_server import RedisServer, running_redis

NOW = time.time()
GRANT = use_key("books", b"\x07" * 32)
Opener = Callable[[], Store]


@pytest.fixture(scope="module")
def redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    with running_redis(tmp_path_factory.mktemp("redis")) as server:
        yield server


@pytest.fixture(params=["sqlite", "redis"])
def opener(request: pytest.FixtureRequest, tmp_path: Path) -> Opener:
    """Opens a new connection to one store each call (as each process of a fleet does)."""
    if request.param == "sqlite":
        settings = StateSettings(path=str(tmp_path / "state.db"))
    else:
        server: RedisServer = request.getfixturevalue("redis")
        settings = StateSettings(url=server.url)
        _flush(server)
    return lambda: open_store(settings)


def _flush(server: RedisServer) -> None:
    async def flush() -> None:
        store = open_store(StateSettings(url=server.url))
        await store.open()
        await store._client.flushdb()  # type: ignore[attr-defined]
        await store.close()

    asyncio.run(flush())


@pytest.fixture
async def store(opener: Opener) -> AsyncIterator[Store]:
    opened = opener()
    await opened.open()
    yield opened
    await opened.close()


async def test_revocations_round_trip_and_change_the_revision(store: Store) -> None:
    before = await store.revision()
    key = new_revocation("books", Kind.KEY, "k1", None, NOW)
    prefix = new_revocation("books", Kind.PREFIX, "/books/old", NOW + 60, NOW)
    await store.revoke(key)
    await store.revoke(prefix)
    await store.revoke(key)  # the same revocation twice is one
    assert sorted(r.id for r in await store.revocations()) == sorted([key.id, prefix.id])
    assert await store.revision() != before
    assert await store.unrevoke(key.id)
    assert not await store.unrevoke(key.id)
    assert [r.id for r in await store.revocations()] == [prefix.id]
    await store.prune(NOW + 61)  # ended: removed
    assert await store.revocations() == []


async def test_what_changed_after_a_revision(store: Store) -> None:
    first = new_revocation("books", Kind.KEY, "k1", None, NOW)
    second = new_revocation("books", Kind.KEY, "k2", None, NOW)
    await store.revoke(first)
    await store.revoke(second)
    seen = await store.revision()
    assert await store.changed(seen) == ([], [])
    third = new_revocation("books", Kind.PREFIX, "/books/x", None, NOW)
    await store.unrevoke(first.id)
    await store.revoke(third)
    written, removed = await store.changed(seen)
    assert (written, removed) == ([third], [first.id])
    assert await store.revision() > seen


async def test_uses_are_exact_across_connections(opener: Opener) -> None:
    # 12 uses of a 3-use grant at once, from 4 connections (4 processes): exactly 3 allowed.
    stores = [opener() for _ in range(4)]
    for store in stores:
        await store.open()
    limit = UseLimit(3, 60)
    now = time.time()  # not the module's NOW: a record kept until a past time is gone at once
    uses = [stores[n % 4].use(GRANT, f"198.51.100.{n}", limit, now + 600, now) for n in range(12)]
    answers = await asyncio.gather(*uses)
    for store in stores:
        await store.close()
    assert answers.count(True) == 3


async def test_a_download_continued_from_one_address_is_one_use(store: Store) -> None:
    limit = UseLimit(2, 60)
    assert await store.use(GRANT, "a", limit, None, NOW)
    assert await store.use(GRANT, "a", limit, None, NOW + 59)  # resumed: the same use
    assert await store.use(GRANT, "b", limit, None, NOW + 1)  # the second use
    assert not await store.use(GRANT, "c", limit, None, NOW + 2)
    assert not await store.use(GRANT, "a", limit, None, NOW + 60)  # a new use: none left
    other = use_key("books", b"\x08" * 32)
    assert await store.use(other, "c", limit, None, NOW)  # each grant counts its own
    no_window = UseLimit(1, 0)
    third = use_key("books", b"\x09" * 32)
    assert await store.use(third, "a", no_window, None, NOW)
    assert not await store.use(third, "a", no_window, None, NOW)  # window 0: every request


async def test_a_change_wakes_another_connection_at_once(redis: RedisServer) -> None:
    settings = StateSettings(url=redis.url)
    watcher, writer = open_store(settings), open_store(settings)
    await watcher.open()
    await writer.open()
    await watcher.wait_for_change(0.5)  # the wake-up of its own subscription
    started = time.monotonic()
    waiting = asyncio.create_task(watcher.wait_for_change(30))
    await asyncio.sleep(0.05)
    await writer.revoke(new_revocation("books", Kind.KEY, "k9", None, NOW))
    await waiting
    took = time.monotonic() - started
    await watcher.close()
    await writer.close()
    assert took < 0.9  # the channel, not the once-a-second look at the revision


def test_a_corrupt_sqlite_file_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    path.write_bytes(b"this is not a database" * 100)
    with pytest.raises(StoreError, match=r"state .*state.db: open: file is not a database"):
        asyncio.run(_open(StateSettings(path=str(path))))


def test_a_locked_sqlite_file_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    asyncio.run(_open(StateSettings(path=str(path))))
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        with pytest.raises(StoreError, match="database is locked"):
            asyncio.run(_open(StateSettings(path=str(path))))
    finally:
        holder.execute("ROLLBACK")
        holder.close()


def test_an_unreachable_redis_is_a_store_error(redis: RedisServer) -> None:
    settings = StateSettings(
        url=f"redis://127.0.0.1:{redis.port + 1 if redis.port < 65535 else 1}/0"
    )
    with pytest.raises(StoreError, match="open: ConnectionError"):
        asyncio.run(_open(settings))


async def _open(settings: StateSettings) -> None:
    store = open_store(settings)
    try:
        await store.open()
        await store.revocations()
    finally:
        await store.close()


def test_a_server_whose_port_was_taken_starts_on_another(
    redis: RedisServer, tmp_path: Path
) -> None:
    # Two suites run side by side: a port picked free may be another's server by the
    # time this one binds it, which must never become this test's store.
    second = RedisServer(tmp_path / "second", port=redis.port)
    second.start()
    try:
        assert second.port != redis.port and second.process is not None
        assert second.process.poll() is None
    finally:
        second.stop()


async def test_a_grant_in_its_clock_skew_keeps_its_count(store: Store) -> None:
    # A grant is accepted up to clock_skew after its expiry: its uses must be kept that
    # long too, or a record kept only until the expiry (gone at once in Redis) would let
    # every request of those seconds be a first use.
    counter = UseCounter(store, 1.0, StateMetrics(CollectorRegistry()), JsonLog(io.BytesIO()))
    source = SourceSettings("once", "md5-token", "/once/", None, Mode.ENFORCE, 403, None,
                            uses=UseLimit(1, 0))  # fmt: skip
    verdict = allow("k1", int(time.time()) - 10, shareable=False, grant=b"\x05" * 16)
    counted = Decision(200, Reason.OK, Outcome.ALLOW, source, "k1", 0, verdict)
    first = await counter.count(counted, "a")
    second = await counter.count(counted, "b")
    assert (first.reason, second.reason) == (Reason.OK, Reason.USED_UP)
