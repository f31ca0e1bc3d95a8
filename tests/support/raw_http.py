"""What the ``test_http_*`` modules share: the verify listener's config, raw requests as
nginx sends them, a raw client, and the check that the process still serves correctly.

Raw sockets to the real ``sidecar serve`` process, no nginx in between. After every hostile
case the process must be alive and still answer a signed request with 200 and an unsigned
one with 401. Each module counts the hostile cases it sent, prints them and adds them to the
end-of-run reliability figures.
"""

from __future__ import annotations

import socket
from collections import Counter
from typing import NamedTuple

from sidecar.devtools.local_stack import LocalStack
from tests.support.configs import md5_source, sidecar_config
from tests.support.figures import record
from tests.support.requests import HOST
from tests.support.tokens import BOOKS_TOKEN, md5_signed

CONFIG = sidecar_config(
    md5_source("books", "/books/", {"k1": BOOKS_TOKEN}), server={"clock_skew": 30}
)
SIGNED = md5_signed("/books/x.png?w=400")
UNSIGNED = "/books/x.png?w=400"


class HostileCases(Counter[str]):
    """The hostile cases one module sent, by kind."""

    def sent(self, test: str, count: int = 1) -> None:
        self[test] += count

    def print_and_record(self) -> None:
        total = sum(self.values())
        for name, sent in sorted(self.items()):
            print(f"[http] {name}: {sent} cases")
        print(f"[http] total: {total} cases sent, each followed by a signed and an unsigned check")
        record("hostile HTTP cases sent", total)


class Response(NamedTuple):
    status: int
    headers: dict[str, str]
    body: bytes

    @property
    def result(self) -> str:
        return self.headers.get("x-signature-result", "")


def verify_request(
    uri: bytes | str,
    *,
    extra: tuple[bytes, ...] = (),
    version: bytes = b"HTTP/1.1",
    method: bytes = b"GET",
) -> bytes:
    """The auth subrequest nginx sends (nginx/signed-url-auth.conf), plus ``extra`` lines."""
    raw_uri = uri.encode() if isinstance(uri, str) else uri
    lines = [
        method + b" /verify " + version,
        b"Host: 127.0.0.1",
        b"X-Original-URI: " + raw_uri,
        b"X-Original-Method: GET",
        b"X-Original-Host: " + HOST.encode(),
        b"X-Real-IP: 203.0.113.7",
        b"X-Request-ID: 0123456789abcdef0123456789abcdef",
        *extra,
    ]
    return b"\r\n".join(lines) + b"\r\n\r\n"


class Client:
    """One raw connection: send bytes, parse answers, notice when the server closes."""

    def __init__(self, port: int, *, receive_buffer: int | None = None) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if receive_buffer is not None:  # before connecting, so the window stays small
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
        self.sock.settimeout(10)
        self.sock.connect(("127.0.0.1", port))
        self.buffer = b""
        self.eof = False

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def _fill(self) -> bool:
        try:
            chunk = self.sock.recv(65536)
        except (ConnectionResetError, TimeoutError):
            chunk = b""
        self.eof = not chunk
        self.buffer += chunk
        return bool(chunk)

    def response(self) -> Response | None:
        """The next whole answer, or None when the connection ends (or stalls) first."""
        while b"\r\n\r\n" not in self.buffer:
            if self.eof or not self._fill():
                return None
        head, _, rest = self.buffer.partition(b"\r\n\r\n")
        status_line, *header_lines = head.decode("latin-1").split("\r\n")
        headers = {}
        for line in header_lines:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        length = int(headers.get("content-length", "0"))
        while len(rest) < length and not self.eof:
            self._fill()
            rest = self.buffer.partition(b"\r\n\r\n")[2]
        self.buffer = rest[length:]
        return Response(int(status_line.split(" ")[1]), headers, rest[:length])

    def responses(self) -> list[Response]:
        """Every answer until the server closes the connection."""
        found = []
        while (answer := self.response()) is not None:
            found.append(answer)
        return found

    def closed_by_server(self, timeout: float = 5.0) -> bool:
        """True when the server ends the connection (EOF or reset) within ``timeout``."""
        self.sock.settimeout(timeout)
        try:
            while chunk := self.sock.recv(65536):
                self.buffer += chunk
        except ConnectionResetError:
            return True
        except TimeoutError:
            return False
        finally:
            self.sock.settimeout(10)
        return True

    def close(self) -> None:
        self.sock.close()


def exchange(port: int, data: bytes, expected: int = 1) -> tuple[list[Response], bool]:
    """Send ``data`` on a fresh connection; read up to ``expected`` answers (fewer if the
    server closes first); and whether the server then closed the connection by itself."""
    client = Client(port)
    try:
        client.send(data)
        answers: list[Response] = []
        while len(answers) < expected and (answer := client.response()) is not None:
            answers.append(answer)
        return answers, client.closed_by_server(timeout=0.5)
    finally:
        client.close()


def assert_still_serving(stack: LocalStack) -> None:
    """The process is alive and decides correctly on a new connection."""
    assert stack.sidecar is not None and stack.sidecar.poll() is None, "the sidecar died"
    answers, _ = exchange(
        stack.sidecar_port,
        verify_request(SIGNED) + verify_request(UNSIGNED, version=b"HTTP/1.0"),
        expected=2,
    )
    assert [(a.status, a.result) for a in answers] == [(200, "ok"), (401, "missing")]


def assert_refused(answers: list[Response], closed: bool) -> None:
    """Malformed HTTP: at most one answer, a 400 or a deny (an HTTP/0.9 line is read as a
    request without headers), and the connection closed."""
    assert [a.status for a in answers] in ([], [400], [401], [403]), answers
    assert closed, "the server kept a connection it could not parse"


def foreign_log_lines(stack: LocalStack) -> list[str]:
    """Lines of the sidecar's log that are not JSON records (a traceback, "Fatal error")."""
    lines = (stack.folder / "sidecar.log").read_text(errors="replace").splitlines()
    return [line for line in lines if not line.startswith("{")]
