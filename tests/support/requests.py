"""Requests to a running stack, sent exactly as written (no client-side normalisation):
through nginx, straight to the sidecar's ``/verify`` as nginx's auth subrequest sends it,
and raw bytes on a socket."""

from __future__ import annotations

import http.client
import socket
from collections.abc import Mapping
from typing import NamedTuple

from sidecar.devtools.local_stack import LocalStack

HOST = "image.example.com"  # the example server's server_name in nginx/nginx.conf


class Reply(NamedTuple):
    status: int  # 0: the connection was closed without an answer (nginx's 444)
    headers: Mapping[str, str]
    body: bytes


def request(
    port: int,
    uri: str,
    *,
    method: str = "GET",
    host: str | None = HOST,
    headers: Mapping[str, str | bytes] | None = None,
) -> Reply:
    """One request with ``uri`` sent exactly as given (no client-side normalisation)."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.putrequest(method, uri, skip_host=True, skip_accept_encoding=True)
        if host is not None:
            connection.putheader("Host", host)
        for name, value in (headers or {}).items():
            connection.putheader(name, value)
        connection.endheaders()
        response = connection.getresponse()
        body = response.read()
        return Reply(response.status, {k.lower(): v for k, v in response.getheaders()}, body)
    except (http.client.RemoteDisconnected, ConnectionResetError):
        return Reply(0, {}, b"")
    finally:
        connection.close()


def fetch(
    stack: LocalStack,
    uri: str,
    *,
    method: str = "GET",
    host: str = HOST,
    headers: Mapping[str, str] | None = None,
) -> tuple[int, bytes]:
    """Status and body of a request through nginx (status 0: connection closed)."""
    reply = request(stack.nginx_port, uri, method=method, host=host, headers=headers)
    return reply.status, reply.body


def fetch_with_reason(
    stack: LocalStack,
    uri: str,
    *,
    method: str = "GET",
    host: str = HOST,
    headers: Mapping[str, str] | None = None,
) -> tuple[int, bytes, str]:
    """Like ``fetch``, plus the sidecar's reason as nginx logged it ("-": never asked),
    found by the request id nginx sent back (X-Request-ID), never by log position."""
    reply = request(stack.nginx_port, uri, method=method, host=host, headers=headers)
    assert reply.headers.get("x-request-id"), "nginx sent no X-Request-ID"
    return reply.status, reply.body, stack.result_for(reply.headers["x-request-id"])


def nginx_headers(
    uri: str | bytes | None,
    *,
    method: str | bytes = "GET",
    host: str | bytes = HOST,
    client_ip: str | bytes = "203.0.113.7",
) -> dict[str, str | bytes]:
    """The headers nginx's auth location sets (nginx/signed-url-auth.conf), and no others."""
    headers: dict[str, str | bytes] = {
        "X-Original-Method": method,
        "X-Original-Host": host,
        "X-Real-IP": client_ip,
        "X-Request-ID": "0123456789abcdef0123456789abcdef",
    }
    if uri is not None:
        headers["X-Original-URI"] = uri
    return headers


def verify(
    stack: LocalStack,
    uri: str | bytes | None,
    *,
    method: str | bytes = "GET",
    host: str | bytes = HOST,
    client_ip: str | bytes = "203.0.113.7",
) -> Reply:
    """Call the sidecar's ``/verify`` directly, as nginx's auth subrequest does."""
    headers = nginx_headers(uri, method=method, host=host, client_ip=client_ip)
    return request(stack.sidecar_port, "/verify", host="127.0.0.1", headers=headers)


def raw_exchange(port: int, data: bytes) -> bytes:
    """Send raw bytes (anything, even invalid UTF-8) and return the whole raw answer."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(data)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)
