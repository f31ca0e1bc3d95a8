"""The processes ``bench/state_cost.py`` measures: sidecars on configurations of their own,
a ``redis-server``, and a SQLite state file written directly in the store's format."""

from __future__ import annotations

import asyncio
import os
import secrets
import socket
import sqlite3
import subprocess
import time
from pathlib import Path

from sidecar.devtools.local_stack import free_port, wait_for_port
from sidecar.policy.revocations import Kind, Revocation, new_revocation
from sidecar.runtime.store_sqlite import SqliteStore

from . import scale_probe

PIPELINE = 100  # requests in flight on the one connection of the rate runs


def unmatched_revocations(
    source: str, count: int, now: float, *, keys: int, prefixes: int
) -> list[Revocation]:
    """``count`` revocations of ``source`` that the bench's URLs never fall under: ``keys``
    key ids the source does not use, ``prefixes`` prefixes of other folders, and grants of
    other signatures (each request's grant digest is still looked up among them)."""
    records = [new_revocation(source, Kind.KEY, f"retired-{i}", None, now) for i in range(keys)]
    records += [
        new_revocation(source, Kind.PREFIX, f"/{source}/withdrawn-{i}/", None, now)
        for i in range(prefixes)
    ]
    records += [
        new_revocation(source, Kind.GRANT, secrets.token_hex(16), None, now)
        for _ in range(max(0, count - keys - prefixes))
    ]
    return records


def write_state(path: Path, records: list[Revocation]) -> None:
    """The store's own file (its schema, WAL), the rows written directly in its format."""
    store = SqliteStore(str(path))

    async def create() -> None:
        await store.open()
        await store.close()

    asyncio.run(create())
    write_rows(path, records)


def write_rows(path: Path, records: list[Revocation]) -> None:
    """``records`` stored as ``SqliteStore.revoke`` stores one, the revision moved once."""
    with sqlite3.connect(path) as db:
        db.executemany(
            "INSERT OR REPLACE INTO revocations VALUES (?, ?, ?)",
            [(r.id, r.until, r.to_json().decode()) for r in records],
        )
        db.execute("UPDATE meta SET value = value + 1 WHERE name = 'revision'")


class Setup:
    """One sidecar process on a configuration of its own."""

    def __init__(self, folder: Path, body: str) -> None:
        folder.mkdir(parents=True)
        self.folder, self.port = folder, free_port()
        self.config = folder / "sidecar.toml"
        self.config.write_text(
            f'[server]\nlisten = "127.0.0.1:{self.port}"\n\n{body}',
            encoding="utf-8",
        )
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.process, _ = scale_probe.start(self.config, self.port, self.folder / "sidecar.log")

    def stop(self) -> None:
        if self.process is None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:  # a stop that hangs must not outlive the run
            self.process.kill()
            self.process.wait(timeout=10)

    def cpu_seconds(self) -> float:
        assert self.process is not None
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rpartition(")")[2].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def rss_mb(self) -> float:
        assert self.process is not None
        return scale_probe.rss_mb(self.process.pid)


def pipelined(setup: Setup, request: bytes, count: int) -> tuple[float, float]:
    """Requests a second and the sidecar's CPU µs a request, over ``count`` requests (every
    answer must be a 200)."""
    batch, batches = request * PIPELINE, max(1, count // PIPELINE)
    with socket.create_connection(("127.0.0.1", setup.port)) as connection:
        cpu, started = setup.cpu_seconds(), time.perf_counter()
        for _ in range(batches):
            connection.sendall(batch)
            answered = 0
            while answered < PIPELINE:
                chunk = connection.recv(1 << 20)
                answered += chunk.count(b"HTTP/1.1 ")
                if chunk.count(b"HTTP/1.1 200 ") != chunk.count(b"HTTP/1.1 "):
                    raise RuntimeError(f"an answer other than 200: {chunk[:300]!r}")
        elapsed, cpu = time.perf_counter() - started, setup.cpu_seconds() - cpu
    total = batches * PIPELINE
    return total / elapsed, cpu / total * 1e6


def start_redis(folder: Path) -> tuple[subprocess.Popen[bytes], str]:
    """Debian's ``redis-server`` on a loopback port: append-only, fsync once a second (the
    usual production setting; ``always`` would put a disk flush in every use)."""
    folder.mkdir(parents=True)
    port = free_port()
    process = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
         "--appendonly", "yes", "--appendfsync", "everysec", "--dir", str(folder)],
        stdout=(folder / "redis.log").open("wb"), stderr=subprocess.STDOUT,
    )  # fmt: skip
    wait_for_port(port)
    return process, f"redis://127.0.0.1:{port}/0"
