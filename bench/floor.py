"""The I/O floor of a Python verifier: a bare asyncio protocol on uvloop that answers
every request with the same pre-encoded allow, reading nothing but where requests end.

Any verifier written in Python pays at least this for its sockets and its event loop;
``bench.py`` measures it beside the sidecar, directly and behind nginx's auth_request, so
the difference is what the verification itself costs under load. Run by ``bench.py``:
``python bench/floor.py PORT`` (127.0.0.1 only).
"""

from __future__ import annotations

import asyncio
import sys

import uvloop

ANSWER = (
    b"HTTP/1.1 200 OK\r\nX-Signature-Result: ok\r\nX-Accel-Expires: 0\r\n"
    b"Cache-Control: no-store\r\nContent-Length: 0\r\n\r\n"
)


class Floor(asyncio.Protocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport: asyncio.Transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        # Neither wrk nor nginx splits a request this small: one end, one answer.
        self.transport.write(ANSWER * data.count(b"\r\n\r\n"))


async def serve(port: int) -> None:
    loop = asyncio.get_running_loop()
    await loop.create_server(Floor, "127.0.0.1", port, backlog=1024)
    await asyncio.Event().wait()


if __name__ == "__main__":
    uvloop.run(serve(int(sys.argv[1])))
