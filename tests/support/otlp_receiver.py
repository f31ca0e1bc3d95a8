"""A local OTLP/HTTP trace receiver on loopback: ``POST /v1/traces`` decoded with
``opentelemetry-proto``, as a collector would. ``silent=True`` accepts each request and
never answers (a collector that hangs)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)


@dataclass(frozen=True)
class ReceivedSpan:
    name: str
    trace_id: str  # hex, as in a traceparent
    span_id: str
    parent_span_id: str
    attributes: dict[str, Any]
    resource: dict[str, Any]


@dataclass
class Receiver:
    port: int = 0
    bodies: list[bytes] = field(default_factory=list)  # every request as sent
    spans: list[ReceivedSpan] = field(default_factory=list)
    posts: int = 0  # requests begun (a silent receiver never answers them)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def wait_for(self, name: str, count: int = 1, timeout: float = 10.0) -> list[ReceivedSpan]:
        """The spans called ``name``, once ``count`` of them have arrived."""
        deadline = time.monotonic() + timeout
        while True:
            with self._lock:
                found = [span for span in self.spans if span.name == name]
            if len(found) >= count:
                return found
            assert time.monotonic() < deadline, f"{len(found)} {name} spans of {count}"
            time.sleep(0.05)

    def take(self, body: bytes) -> None:
        request = ExportTraceServiceRequest.FromString(body)
        spans = [
            ReceivedSpan(
                span.name,
                span.trace_id.hex(),
                span.span_id.hex(),
                span.parent_span_id.hex(),
                _values(span.attributes),
                _values(resource_spans.resource.attributes),
            )
            for resource_spans in request.resource_spans
            for scope_spans in resource_spans.scope_spans
            for span in scope_spans.spans
        ]
        with self._lock:
            self.bodies.append(body)
            self.spans.extend(spans)


def _values(attributes: Any) -> dict[str, Any]:
    return {item.key: getattr(item.value, item.value.WhichOneof("value")) for item in attributes}


@contextmanager
def otlp_receiver(*, silent: bool = False) -> Iterator[Receiver]:
    receiver = Receiver()
    hang = threading.Event()  # set on exit: a silent handler then lets go

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            receiver.posts += 1
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            if silent:
                hang.wait()
                return
            status = 200 if self.path == "/v1/traces" else 404
            if status == 200:
                receiver.take(body)
            answer = ExportTraceServiceResponse().SerializeToString()
            self.send_response(status)
            self.send_header("Content-Type", "application/x-protobuf")
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    receiver.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        hang.set()
        server.shutdown()
        server.server_close()
