"""``[state] url``: Valkey or Redis, shared by every sidecar of a fleet.

Through redis-py's asyncio client (with the hiredis parser): the Python client both
Valkey and Redis document, speaking the protocol they share. Revocations are one hash
(id -> record) and a revision counter; a change is announced on a channel, which wakes
every sidecar's sync at once (``wait_for_change``); a missed message is healed by the
revision, which the sync reads every second anyway. A use is counted by one Lua script,
which Redis runs atomically: exact across every sidecar.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any, Final

import redis.asyncio as redis
from redis.exceptions import RedisError

from sidecar.errors import StoreError
from sidecar.policy.revocations import Revocation, from_json
from sidecar.policy.settings import UseLimit
from sidecar.runtime.stores import KEY_PREFIX

REVOCATIONS: Final = f"{KEY_PREFIX}:revocations"
REVISION: Final = f"{KEY_PREFIX}:revision"
CHANGES: Final = f"{KEY_PREFIX}:changes-by-revision"  # sorted set: id -> revision of its change
CHANNEL: Final = f"{KEY_PREFIX}:changes"
USES: Final = f"{KEY_PREFIX}:use:"
POLL_INTERVAL: Final = 1.0  # seconds: the revision is read at least this often
SCAN_BATCH: Final = 2000  # revocations read per round trip (the loop serves between them)
CONNECT_TIMEOUT: Final = 1.0
CLOSE_TIMEOUT: Final = 2.0  # seconds close() waits for the change feed to stop
# KEYS[1]: the grant's use record. ARGV: client, now, window, max_uses, expiry (0: none).
# A client's use lasts `window` seconds from its first request; a new one needs a free use.
_USE: Final = """
local started = redis.call('HGET', KEYS[1], 'c:' .. ARGV[1])
if started and tonumber(ARGV[2]) - tonumber(started) < tonumber(ARGV[3]) then return 1 end
local used = tonumber(redis.call('HGET', KEYS[1], 'n') or '0')
if used >= tonumber(ARGV[4]) then return 0 end
redis.call('HSET', KEYS[1], 'n', used + 1, 'c:' .. ARGV[1], ARGV[2])
if tonumber(ARGV[5]) > 0 then redis.call('EXPIREAT', KEYS[1], ARGV[5]) end
return 1
"""
# KEYS: revocations, revision, changes. ARGV: id, the record (none: remove it), channel.
# One script: the record, the new revision and the change land together.
_CHANGE: Final = """
local revision = redis.call('INCR', KEYS[2])
local removed = 0
if ARGV[2] == '' then
  removed = redis.call('HDEL', KEYS[1], ARGV[1])
else
  redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
end
redis.call('ZADD', KEYS[3], revision, ARGV[1])
redis.call('PUBLISH', ARGV[3], 'changed')
return removed
"""


class RedisStore:
    def __init__(self, url: str, where: str) -> None:
        self.where = where
        self._client: Any = redis.Redis.from_url(
            url, socket_connect_timeout=CONNECT_TIMEOUT, socket_timeout=5.0,
            health_check_interval=0, retry_on_timeout=False,
        )  # fmt: skip
        self._use = self._client.register_script(_USE)
        self._change = self._client.register_script(_CHANGE)
        self._changed = asyncio.Event()
        self._listener: asyncio.Task[None] | None = None  # started by the first wait
        self._closed = False

    async def open(self) -> None:
        await self._call("open", self._client.ping())

    async def revision(self) -> int:
        value = await self._call("revision", self._client.get(REVISION))
        try:
            return int(value or 0)
        except ValueError:
            raise StoreError(f"state {self.where}: {REVISION} is not a number") from None

    async def revocations(self) -> list[Revocation]:
        bodies: list[bytes] = []
        cursor = 0
        while True:
            cursor, batch = await self._call(
                "read", self._client.hscan(REVOCATIONS, cursor, count=SCAN_BATCH)
            )
            bodies.extend(batch.values())
            if cursor == 0:
                break
        # Parsed on a thread: 100,000 records take a second of Python, which the event
        # loop must not spend.
        return await asyncio.to_thread(_parse, bodies)

    async def changed(self, since: int) -> tuple[list[Revocation], list[str]]:
        ids = await self._call("read", self._client.zrangebyscore(CHANGES, f"({since}", "+inf"))
        if not ids:
            return [], []
        bodies = await self._call("read", self._client.hmget(REVOCATIONS, ids))
        written = await asyncio.to_thread(_parse, [body for body in bodies if body is not None])
        removed = [key.decode() for key, body in zip(ids, bodies, strict=True) if body is None]
        return written, removed

    async def revoke(self, record: Revocation) -> None:
        keys = [REVOCATIONS, REVISION, CHANGES]
        await self._call(
            "revoke", self._change(keys=keys, args=[record.id, record.to_json(), CHANNEL])
        )

    async def unrevoke(self, revocation_id: str) -> bool:
        keys = [REVOCATIONS, REVISION, CHANGES]
        removed = await self._call(
            "unrevoke", self._change(keys=keys, args=[revocation_id, "", CHANNEL])
        )
        return bool(removed)

    async def prune(self, now: float) -> None:
        # Use records expire by themselves (EXPIREAT); ended revocations are removed here.
        ended = [record.id for record in await self.revocations() if not record.active(now)]
        if ended:
            await self._call("prune", self._client.hdel(REVOCATIONS, *ended))
            await self._call("prune", self._client.zrem(CHANGES, *ended))

    async def use(
        self, grant: bytes, client: str, limit: UseLimit, expires_at: float | None, now: float
    ) -> bool:
        args: list[str | int] = [
            client,
            repr(now),
            limit.window,
            limit.max_uses,
            int(expires_at or 0),
        ]
        allowed = await self._call("use", self._use(keys=[USES + grant.hex()], args=args))
        return bool(allowed)

    async def wait_for_change(self, timeout: float) -> None:
        if self._listener is None:
            self._listener = asyncio.create_task(self._listen())
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._changed.wait(), min(timeout, POLL_INTERVAL))
        self._changed.clear()

    async def close(self) -> None:
        self._closed = True
        if self._listener is not None:
            # Waited for a bounded time: a cancellation that lands inside the client's
            # own read is not always passed on at once.
            self._listener.cancel()
            await asyncio.wait({self._listener}, timeout=CLOSE_TIMEOUT)
        await self._client.aclose()

    async def _listen(self) -> None:
        """The change feed: every message on the channel wakes the sync. A lost
        connection is retried; the revision covers what was missed meanwhile."""
        while not self._closed:
            try:
                async with self._client.pubsub() as pubsub:
                    await pubsub.subscribe(CHANNEL)
                    self._changed.set()  # (re)subscribed: something may have been missed
                    while not self._closed:
                        message = await pubsub.get_message(
                            ignore_subscribe_messages=True, timeout=POLL_INTERVAL
                        )
                        if message is not None:
                            self._changed.set()
            except (RedisError, OSError):
                await asyncio.sleep(POLL_INTERVAL)

    async def _call(self, operation: str, pending: Any) -> Any:
        try:
            return await pending
        except (RedisError, OSError) as error:
            raise StoreError(f"state {self.where}: {operation}: {type(error).__name__}") from None


def _parse(bodies: list[bytes]) -> list[Revocation]:
    return [record for body in bodies if (record := from_json(body)) is not None]
