"""Shared fixtures and helpers: stacks of the real sidecar process (and a real nginx),
requests to them, their metrics, and ``sidecar.toml`` text built from its parts.

A stack is the shipped nginx config rendered into a private folder in front of
``sidecar serve``, both on loopback ports of their own, serving real PNG files.
Module-scoped stacks are shared by tests that only read; tests that stop, reload or
count start their own.
"""

from __future__ import annotations

import hashlib
import http.client
import itertools
import json
import os
import socket
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import NamedTuple, Protocol, TypeAlias

import pytest
from prometheus_client.parser import text_string_to_metric_families

from sidecar.devtools.demo import png, write_images
from sidecar.devtools.local_stack import LocalStack
from tests.support.figures import FIGURES

# The shared scheme contract's asserts explain their failures like a test module's (it is
# imported by the test modules, after this file).
pytest.register_assert_rewrite("tests.support.scheme_contract")
# So do the helper modules that split test modules share (their asserts check answers).
pytest.register_assert_rewrite(
    "tests.fuzz._properties_support",
    "tests.process._deploy_support",
    "tests.process._e2e_support",
    "tests.process._http_support",
    "tests.process.observability._support",
    "tests.process.observability._traffic",
    "tests.unit.schemes._cloudfront_support",
)

REPO = Path(__file__).resolve().parent.parent  # the repository: docker/, grafana/, fuzz/ ...
HOST = "image.example.com"  # the example server's server_name in nginx/nginx.conf
# The Secure Source documentation's own example token: published, not a secret.
BOOKS_TOKEN = "wakanda123@"
# The smallest working config: one md5-token source, its token in the file.
ONE_SOURCE_CONFIG = f"""
[[sources]]
name = "books"
scheme = "md5-token"
path_prefix = "/books/"
  [[sources.keys]]
  id = "k1"
  secret = "{BOOKS_TOKEN}"
"""
SECRET_TOKEN = "s3cret-source-t0ken-9f2c"
REPORT_TOKEN = "rep0rt-source-t0ken-41aa"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"

# Files beyond the demo's; every image differs, so its bytes identify the file.
EXTRA_IMAGES = {
    "/books/database-internals.jpg": png(24, 36, (180, 120, 30)),
    "/books/x.png": png(12, 12, (90, 20, 140)),
    "/public/x.png": png(10, 14, (20, 200, 200)),
    "/secret/x.png": png(14, 10, (250, 10, 10)),
    "/reports/r.png": png(8, 8, (60, 60, 60)),
    "/other/o.png": png(9, 9, (10, 240, 10)),
}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """The pure-Python pass (scripts/test) leaves out the tests that build and install their
    own copy of the package: they test that artifact, which the compiled pass already did.
    Deselected, not skipped, whatever else the command line selects."""
    if os.environ.get("SIDECAR_TEST_BUILD") != "pure":
        return
    kept = [item for item in items if item.get_closest_marker("installs") is None]
    if len(kept) < len(items):
        config.hook.pytest_deselected(items=[item for item in items if item not in kept])
        items[:] = kept


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if FIGURES:
        terminalreporter.section("reliability figures")
        for name, value in sorted(FIGURES.items()):
            terminalreporter.write_line(f"{name}: {value:,}")


class StackFactory(Protocol):
    def __call__(self, config_text: str, *, nginx: bool = True) -> LocalStack: ...


def write_test_images(root: Path) -> None:
    """The demo's images (real PNGs, one with an encoded name) plus ``EXTRA_IMAGES``."""
    write_images(root)
    for path, data in EXTRA_IMAGES.items():
        target = root / path.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)


def image_bytes(stack: LocalStack, path: str) -> bytes:
    """The file on disk that ``path`` (decoded URL path) names: what nginx must serve."""
    return (stack.images / path.lstrip("/")).read_bytes()


def any_image_in(body: bytes, stack: LocalStack) -> bool:
    """True when ``body`` contains a PNG or any served file's bytes."""
    if not body:
        return False
    files = (path for path in stack.images.rglob("*") if path.is_file())
    return PNG_MAGIC in body or any(file.read_bytes() in body for file in files)


def md5_signed(unsigned_uri: str, token: str = BOOKS_TOKEN) -> str:
    """The md5-token formula, computed here: ``s = md5_hex(uri + token)``, appended last."""
    digest = hashlib.md5((unsigned_uri + token).encode()).hexdigest()
    return f"{unsigned_uri}{'&' if '?' in unsigned_uri else '?'}s={digest}"


def signature_of(uri: str) -> str:
    """The value of the last ``s`` parameter ("" when there is none)."""
    values = [pair[2:] for pair in uri.partition("?")[2].split("&") if pair.startswith("s=")]
    return values[-1] if values else ""


def start_sidecar(stack: LocalStack) -> None:
    """(Re)start the stack's sidecar process and wait until it answers."""
    stack.start_sidecar()


@contextmanager
def running_stack(folder: Path, config_text: str, *, nginx: bool = True) -> Iterator[LocalStack]:
    """A started stack (sidecar, and nginx unless ``nginx=False``), stopped on exit."""
    images = folder / "images"
    write_test_images(images)
    stack = LocalStack(folder, config_text, images)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        stack.write_config()
        start_sidecar(stack)
        if nginx:
            stack.start_nginx()
        yield stack
    finally:
        stack.stop()


@pytest.fixture(scope="module")
def module_stacks(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StackFactory]:
    """Start stacks shared by every test of a module (stopped when the module ends)."""
    with ExitStack() as stacks:

        def start(config_text: str, *, nginx: bool = True) -> LocalStack:
            folder = tmp_path_factory.mktemp("stack")
            return stacks.enter_context(running_stack(folder, config_text, nginx=nginx))

        yield start


@pytest.fixture
def fresh_stack(tmp_path: Path) -> Iterator[StackFactory]:
    """Start stacks owned by one test: for tests that stop, reload or count."""
    numbers = itertools.count()
    with ExitStack() as stacks:

        def start(config_text: str, *, nginx: bool = True) -> LocalStack:
            folder = tmp_path / f"stack{next(numbers)}"
            return stacks.enter_context(running_stack(folder, config_text, nginx=nginx))

        yield start


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
        "X-Forwarded-Proto": "http",
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


def metrics_text(stack: LocalStack) -> str:
    with urllib.request.urlopen(stack.metrics_url, timeout=5) as response:
        body: bytes = response.read()
    return body.decode()


def samples(stack: LocalStack, name: str) -> dict[frozenset[tuple[str, str]], float]:
    """Every sample called ``name`` on the stack's /metrics, keyed by its label set."""
    found = {}
    for family in text_string_to_metric_families(metrics_text(stack)):
        for item in family.samples:
            if item.name == name:
                found[frozenset(item.labels.items())] = item.value
    return found


def verifications_total(stack: LocalStack) -> float:
    """Every decision the stack's sidecar has made (all sources, results, decisions)."""
    return sum(samples(stack, "signed_url_verifications_total").values())


def sample(stack: LocalStack, name: str, **labels: str) -> float:
    """One sample's value (0 when the series does not exist)."""
    return samples(stack, name).get(frozenset(labels.items()), 0.0)


# --- sidecar.toml text, built from its parts -----------------------------------------------

TomlValue: TypeAlias = str | int | bool | Sequence[str]


def toml_value(value: TomlValue) -> str:
    """A TOML literal: JSON's string escapes are TOML's basic-string escapes."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | str):
        return json.dumps(value)
    return "[" + ", ".join(json.dumps(item) for item in value) + "]"


def toml_fields(fields: Mapping[str, TomlValue], indent: str = "") -> str:
    return "".join(f"{indent}{name} = {toml_value(value)}\n" for name, value in fields.items())


def source_toml(
    name: str,
    scheme: str,
    prefix: str,
    keys: Mapping[str, Mapping[str, TomlValue]] | None = None,
    **fields: TomlValue,
) -> str:
    """One ``[[sources]]`` table: its fields in the order given, then a ``[[sources.keys]]``
    table per key id (newest first: the first key signs)."""
    text = "[[sources]]\n"
    text += toml_fields({"name": name, "scheme": scheme, "path_prefix": prefix, **fields})
    for key_id, key_fields in (keys or {}).items():
        text += "  [[sources.keys]]\n" + toml_fields({"id": key_id, **key_fields}, "  ")
    return text + "\n"


def md5_source(
    name: str, prefix: str, keys: Mapping[str, str] | None = None, **fields: TomlValue
) -> str:
    """An ``md5-token`` source; ``keys`` maps each key id to its secret."""
    secrets = {key_id: {"secret": token} for key_id, token in (keys or {}).items()}
    return source_toml(name, "md5-token", prefix, secrets, **fields)


def cloudfront_source(
    name: str,
    prefix: str,
    keys: Mapping[str, str | tuple[str, str]],
    *,
    public_origin: str,
    **fields: TomlValue,
) -> str:
    """A ``cloudfront`` source; ``keys`` maps each Key-Pair-Id to its public key file, or to
    (public key file, private key file) for a key that also signs."""
    files: dict[str, dict[str, TomlValue]] = {}
    for key_id, paths in keys.items():
        public, private = (paths, None) if isinstance(paths, str) else paths
        files[key_id] = {"public_key_file": public}
        if private is not None:
            files[key_id]["private_key_file"] = private
    return source_toml(name, "cloudfront", prefix, files, public_origin=public_origin, **fields)


def team_toml(team: str, source: str, *api_keys: str) -> str:
    """A ``[[teams]]`` table: the team's source and the SHA-256 of each of its API keys."""
    digests = [hashlib.sha256(key.encode()).hexdigest() for key in api_keys]
    return "[[teams]]\n" + toml_fields({"id": team, "source": source, "api_key_sha256": digests})


def sidecar_config(
    *sources: str,
    server: Mapping[str, TomlValue] | None = None,
    signing: Mapping[str, TomlValue] | None = None,
    teams: Sequence[str] = (),
) -> str:
    """A whole ``sidecar.toml``: ``[server]`` and ``[signing]`` when given (an empty mapping
    still writes the table: ``[signing]`` alone turns the signing API on), the sources,
    then the teams."""
    text = ""
    if server is not None:
        text += "[server]\n" + toml_fields(server) + "\n"
    if signing is not None:
        text += "[signing]\n" + toml_fields(signing) + "\n"
    return text + "".join(sources) + "\n".join(teams)
