"""Open-loop load on ``/verify`` at a fixed rate, timing every answer.

Latency is measured from when each request was *due*, not when it was sent, so a stalled
sidecar shows as the stall it is (no coordinated omission: a client that waits for a slow
answer before sending the next would hide it). Loopback only.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

import uvloop

HEADER_END = b"\r\n\r\n"


@dataclass
class LoadResult:
    latencies: list[float] = field(default_factory=list)  # seconds, one per answer
    statuses: Counter[int] = field(default_factory=Counter)
    errors: int = 0  # connections refused or closed mid-answer

    def percentile(self, fraction: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] if ordered else 0.0


def verify_request(uri: str, host: str = "image.example.com") -> bytes:
    """What the shipped nginx auth location sends for ``uri`` (the ``nginx`` profile; no
    ``Cookie`` line, as for a client that sent none)."""
    return (
        f"GET /verify HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nX-Original-URI: {uri}\r\n"
        f"X-Original-Method: GET\r\nX-Original-Host: {host}\r\n"
        "X-Real-IP: 203.0.113.7\r\nX-Request-ID: 5f0c6a7e9d2b4c1a8e3f7b6d5c4a3b2e\r\n\r\n"
    ).encode("ascii")


def run(
    port: int, requests: Sequence[bytes], *, rate: float, seconds: float, connections: int = 8
) -> LoadResult:
    """Send ``requests`` round-robin at ``rate`` a second for ``seconds`` over
    ``connections`` keep-alive connections; every answer's status and latency."""
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(_run(port, requests, rate, seconds, connections))


async def _run(
    port: int, requests: Sequence[bytes], rate: float, seconds: float, connections: int
) -> LoadResult:
    result = LoadResult()
    interval = connections / rate  # each connection's share of the rate
    start = time.perf_counter() + 0.05
    await asyncio.gather(
        *(
            _connection(port, requests[index::connections] or requests, result,
                        (start + index * interval / connections, interval, start + seconds))
            for index in range(connections)
        )
    )  # fmt: skip
    return result


async def _connection(
    port: int, requests: Sequence[bytes], result: LoadResult, schedule: tuple[float, float, float]
) -> None:
    """One keep-alive connection: requests due from ``first`` every ``interval`` to ``end``."""
    first, interval, end = schedule
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    due, sent = first, 0
    try:
        while due < end:
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            writer.write(requests[sent % len(requests)])
            sent += 1
            status = await _answer(reader)
            result.latencies.append(time.perf_counter() - due)
            result.statuses[status] += 1
            due += interval
    except (ConnectionError, asyncio.IncompleteReadError):
        result.errors += 1
    finally:
        writer.close()


async def _answer(reader: asyncio.StreamReader) -> int:
    head = await reader.readuntil(HEADER_END)
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    if length:
        await reader.readexactly(length)
    return int(head.split(b" ", 2)[1])
