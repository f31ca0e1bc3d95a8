"""One verify connection (``VerifyProtocol``) fed bytes directly: which bytes keep it
alive. The whole listener over real sockets: tests/process/test_http_*.py."""

from __future__ import annotations

import asyncio
import io
from pathlib import Path

from prometheus_client import CollectorRegistry

from bench.tools import paced_load
from sidecar import config
from sidecar.runtime.logs import JsonLog
from sidecar.runtime.shared_state import start_shared_state
from sidecar.runtime.state import create_state
from sidecar.runtime.verify_protocol import VerifyProtocol, VerifyServer
from tests.support.configs import ONE_SOURCE_CONFIG, md5_source, sidecar_config
from tests.support.tokens import BOOKS_TOKEN, md5_signed

CONFIG = ONE_SOURCE_CONFIG


class Transport:
    """What the protocol calls on its transport; keeps what it wrote."""

    def __init__(self) -> None:
        self.written: list[bytes] = []
        self.closed = False

    def write(self, data: bytes) -> None:
        self.written.append(data)

    def close(self) -> None:
        self.closed = True

    def pause_reading(self) -> None: ...

    def resume_reading(self) -> None: ...


async def connection(tmp_path: Path) -> tuple[VerifyProtocol, Transport]:
    (tmp_path / "sidecar.toml").write_text(CONFIG)
    state = create_state(config.load(tmp_path / "sidecar.toml"), registry=CollectorRegistry(),
                         log=JsonLog(io.BytesIO()))  # fmt: skip
    protocol, transport = VerifyProtocol(VerifyServer(state, serve_metrics=False)), Transport()
    protocol.connection_made(transport)  # type: ignore[arg-type]
    return protocol, transport


async def test_bare_line_ends_between_requests_do_not_keep_a_connection_alive(
    tmp_path: Path,
) -> None:
    protocol, transport = await connection(tmp_path)
    protocol.data_received(paced_load.verify_request("/books/a.png"))
    assert len(transport.written) == 1 and b" 401 " in transport.written[0]
    answered_at = protocol.last_active
    protocol.last_active -= 60  # an idle minute later,
    protocol.data_received(b"\r\n" * 3)  # bytes that are no request (llhttp skips them)
    assert protocol.last_active == answered_at - 60  # do not renew the idle clock
    assert not protocol.partial and len(transport.written) == 1
    protocol.data_received(paced_load.verify_request("/books/b.png")[:20])
    assert protocol.partial and protocol.last_active > answered_at - 60  # a request's bytes do


async def test_a_repeated_host_header_is_refused_and_closes(tmp_path: Path) -> None:
    protocol, transport = await connection(tmp_path)
    request = paced_load.verify_request("/books/a.png")
    protocol.data_received(request.replace(b"\r\n\r\n", b"\r\nHost: other.example\r\n\r\n"))
    assert len(transport.written) == 1 and transport.written[0].startswith(b"HTTP/1.1 400 ")
    assert transport.closed


async def test_pipelined_answers_keep_their_order_around_a_counted_use(tmp_path: Path) -> None:
    # A use of a max_uses source waits for the store (a real SQLite file); requests read
    # behind it on the same connection are answered after it, in order.
    text = sidecar_config(
        md5_source("books", "/books/", {"k1": BOOKS_TOKEN}),
        md5_source("once", "/once/", {"k2": BOOKS_TOKEN}, max_uses=1, use_window=0),
    )
    (tmp_path / "sidecar.toml").write_text(text + '\n[state]\npath = "state.db"\n')
    settings = config.load(tmp_path / "sidecar.toml")
    state = create_state(settings, registry=CollectorRegistry(), log=JsonLog(io.BytesIO()))
    assert settings.state is not None
    shared = await start_shared_state(state, settings.state)
    protocol, transport = VerifyProtocol(VerifyServer(state, serve_metrics=False)), Transport()
    protocol.connection_made(transport)  # type: ignore[arg-type]
    counted, plain = md5_signed("/once/a.png"), md5_signed("/books/a.png")
    protocol.data_received(b"".join(paced_load.verify_request(uri) for uri in
                                    (counted, plain, counted, "/books/unsigned.png")))  # fmt: skip
    assert transport.written == []  # the first waits for the store; nothing overtakes it
    while len(transport.written) < 4:
        await asyncio.sleep(0.01)
    results = [answer.split(b"X-Signature-Result: ")[1].split(b"\r\n")[0] for answer in
               transport.written]  # fmt: skip
    assert results == [b"ok", b"ok", b"used_up", b"missing"]
    await shared.close()
