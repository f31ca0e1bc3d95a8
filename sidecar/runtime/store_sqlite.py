"""``[state] path``: one SQLite file (WAL) shared by the workers of one host.

Each process holds two connections, each on a thread of its own, so the event loop never
waits on SQLite: one counts uses (a ``BEGIN IMMEDIATE`` transaction, which serialises
writers across processes: the counts are exact), the other reads and writes revocations
(a full read of 100,000 must not hold up a count). ``revision`` changes whenever the
revocations do; SQLite has no notification across processes, so ``wait_for_change``
polls it, four times a second.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Final, NamedTuple, TypeVar

from sidecar.errors import StoreError
from sidecar.policy.revocations import Revocation, from_json
from sidecar.policy.settings import UseLimit

T = TypeVar("T")
POLL_INTERVAL: Final = 0.25  # seconds between two looks at the revision
BUSY_TIMEOUT_MS: Final = 2000  # a writer waits this long for another's lock
_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
INSERT OR IGNORE INTO meta VALUES ('revision', 0);
CREATE TABLE IF NOT EXISTS revocations (id TEXT PRIMARY KEY, until REAL, body TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS changes (id TEXT PRIMARY KEY, revision INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS changes_by_revision ON changes (revision);
CREATE TABLE IF NOT EXISTS use_counts (
    grant_key BLOB PRIMARY KEY, used INTEGER NOT NULL, expires REAL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS use_clients (
    grant_key BLOB NOT NULL, client TEXT NOT NULL, started REAL NOT NULL, expires REAL,
    PRIMARY KEY (grant_key, client)) WITHOUT ROWID;
"""
_BUMP: Final = "UPDATE meta SET value = value + 1 WHERE name = 'revision' RETURNING value"
_CHANGED: Final = "INSERT OR REPLACE INTO changes VALUES (?, ?)"  # which id, at which revision


class SqliteStore:
    def __init__(self, path: str) -> None:
        self.where = path
        self._path = path
        self._counting = ThreadPoolExecutor(1, thread_name_prefix="state-uses")
        self._admin = ThreadPoolExecutor(1, thread_name_prefix="state-revocations")
        # One connection per thread (sqlite3 objects stay on the thread that made them).
        self._connections: dict[ThreadPoolExecutor, sqlite3.Connection] = {}

    async def open(self) -> None:
        await self._on(self._admin, "open", self._create)
        await self._on(self._counting, "open", lambda db: None)

    def _create(self, db: sqlite3.Connection) -> None:
        mode = db.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        if mode != "wal":
            raise sqlite3.OperationalError(f"journal_mode is {mode}, not wal")
        db.executescript(f"BEGIN IMMEDIATE; {_SCHEMA} COMMIT;")

    async def revision(self) -> int:
        return await self._on(self._admin, "revision", _revision)

    async def revocations(self) -> list[Revocation]:
        # Read and parsed on the store's thread: 100,000 records take a second of Python,
        # which the event loop must not spend.
        return await self._on(self._admin, "read", _read_revocations)

    async def changed(self, since: int) -> tuple[list[Revocation], list[str]]:
        return await self._on(self._admin, "read", lambda db: _read_changes(db, since))

    async def revoke(self, record: Revocation) -> None:
        def write(db: sqlite3.Connection) -> None:
            with db:
                db.execute("INSERT OR REPLACE INTO revocations VALUES (?, ?, ?)",
                           (record.id, record.until, record.to_json().decode()))  # fmt: skip
                db.execute(_CHANGED, (record.id, db.execute(_BUMP).fetchone()[0]))

        await self._on(self._admin, "revoke", write)

    async def unrevoke(self, revocation_id: str) -> bool:
        def delete(db: sqlite3.Connection) -> bool:
            with db:
                gone = db.execute("DELETE FROM revocations WHERE id = ?", (revocation_id,))
                db.execute(_CHANGED, (revocation_id, db.execute(_BUMP).fetchone()[0]))
                return gone.rowcount > 0

        return await self._on(self._admin, "unrevoke", delete)

    async def prune(self, now: float) -> None:
        def delete(db: sqlite3.Connection) -> None:
            with db:
                for table in ("revocations", "use_counts", "use_clients"):
                    column = "until" if table == "revocations" else "expires"
                    db.execute(f"DELETE FROM {table} WHERE {column} < ?", (now,))  # noqa: S608
                # An ended revocation leaves the view by itself (it is no longer active). A
                # reader this far behind misses the removal of an unrevoked one and keeps
                # refusing it until its next full read: late, never open.
                db.execute("DELETE FROM changes WHERE id NOT IN (SELECT id FROM revocations)")

        await self._on(self._admin, "prune", delete)

    async def use(
        self, grant: bytes, client: str, limit: UseLimit, expires_at: float | None, now: float
    ) -> bool:
        use = _Use(grant, client, limit, expires_at, now)
        return await self._on(self._counting, "use", lambda db: _count(db, use))

    async def wait_for_change(self, timeout: float) -> None:
        await asyncio.sleep(min(timeout, POLL_INTERVAL))

    async def close(self) -> None:
        for executor in (self._counting, self._admin):
            connection = self._connections.pop(executor, None)
            if connection is not None:
                await asyncio.get_running_loop().run_in_executor(executor, connection.close)
            executor.shutdown(wait=False)

    async def _on(
        self, executor: ThreadPoolExecutor, operation: str, work: Callable[[sqlite3.Connection], T]
    ) -> T:
        def run() -> T:
            db = self._connections.get(executor)
            if db is None:
                db = sqlite3.connect(self._path, isolation_level=None, check_same_thread=False)
                db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
                # WAL with synchronous NORMAL: a commit does not wait for the disk (a use
                # costs a tenth), and the file never corrupts; a power cut may lose the
                # last commits, so a few uses may count again: the trade SQLite documents.
                db.execute("PRAGMA synchronous = NORMAL")
                self._connections[executor] = db
            return work(db)

        try:
            return await asyncio.get_running_loop().run_in_executor(executor, run)
        except sqlite3.Error as error:
            raise StoreError(f"state {self.where}: {operation}: {error}") from None


def _read_revocations(db: sqlite3.Connection) -> list[Revocation]:
    rows = db.execute("SELECT body FROM revocations")
    return [record for (body,) in rows if (record := from_json(body)) is not None]


def _read_changes(db: sqlite3.Connection, since: int) -> tuple[list[Revocation], list[str]]:
    """What changed after revision ``since``: the records written, and the ids removed."""
    rows = db.execute(
        "SELECT changes.id, revocations.body FROM changes LEFT JOIN revocations"
        " ON revocations.id = changes.id WHERE changes.revision > ?",
        (since,),
    )
    written, removed = [], []
    for revocation_id, body in rows:
        record = from_json(body) if body is not None else None
        if record is None:
            removed.append(revocation_id)
        else:
            written.append(record)
    return written, removed


def _revision(db: sqlite3.Connection) -> int:
    row = db.execute("SELECT value FROM meta WHERE name = 'revision'").fetchone()
    if row is None or not isinstance(row[0], int):
        raise sqlite3.DatabaseError("no revision: not a state file of this sidecar")
    return row[0]


class _Use(NamedTuple):
    grant: bytes
    client: str
    limit: UseLimit
    expires_at: float | None
    now: float


def _count(db: sqlite3.Connection, use: _Use) -> bool:
    """One use, in one transaction that holds the write lock from its first read: two
    processes never both see the last use free."""
    db.execute("BEGIN IMMEDIATE")
    try:
        allowed = _count_locked(db, *use)
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")
    return allowed


def _count_locked(  # noqa: PLR0917 (the fields of one _Use)
    db: sqlite3.Connection,
    grant: bytes,
    client: str,
    limit: UseLimit,
    expires_at: float | None,
    now: float,
) -> bool:
    started = db.execute("SELECT started FROM use_clients WHERE grant_key = ? AND client = ?",
                         (grant, client)).fetchone()  # fmt: skip
    if started is not None and now - started[0] < limit.window:
        return True  # the same download, continued
    used = db.execute("SELECT used FROM use_counts WHERE grant_key = ?", (grant,)).fetchone()
    if used is not None and used[0] >= limit.max_uses:
        return False
    db.execute("INSERT INTO use_counts VALUES (?, 1, ?) ON CONFLICT (grant_key) DO UPDATE "
               "SET used = used + 1", (grant, expires_at))  # fmt: skip
    db.execute("INSERT OR REPLACE INTO use_clients VALUES (?, ?, ?, ?)",
               (grant, client, now, expires_at))  # fmt: skip
    return True
