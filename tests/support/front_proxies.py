"""Caddy and HAProxy, from the shipped files (caddy/, haproxy/), in front of a running
sidecar: rendered into a private folder, changed only where a local run must differ
(addresses, the image root, the Lua's path), each change checked to apply so the shipped
files cannot drift from what is tested.

HAProxy serves no files itself: behind it, a Python file server serves the images (it
decodes and normalises paths as nginx does, so a non-canonical URI would reach a file).

``ask`` sends a request through a front and returns the answer with the reason the
sidecar decided, read from its counters around the request (the client is not shown it).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import NamedTuple, TypeVar

from sidecar.devtools.local_stack import LocalStack, free_port, wait_for_port
from tests.support.metrics import metrics_text
from tests.support.paths import REPO
from tests.support.requests import Reply, request
from tests.support.stacks import any_image_in

CADDYFILE = REPO / "caddy" / "Caddyfile"
HAPROXY_CFG = REPO / "haproxy" / "haproxy.cfg"
HAPROXY_LUA = REPO / "haproxy" / "signed-url-auth.lua"
HOST = "image.example.com"  # the one host both shipped files route on
T = TypeVar("T")


class Front(NamedTuple):
    """A proxy in front of ``stack``'s sidecar, answering on ``port``."""

    name: str
    port: int
    stack: LocalStack
    folder: Path


def replaced(text: str, changes: dict[str, str]) -> str:
    for old, new in changes.items():
        assert text.count(old) == 1, f"the shipped file no longer holds {old!r} once"
        text = text.replace(old, new)
    return text


def _start(cleanup: ExitStack, command: list[str], folder: Path, port: int, **env: str) -> None:
    """Start ``command``, stopped when ``cleanup`` closes, and wait until ``port`` listens."""
    with (folder / "proxy.log").open("ab") as log:
        process = subprocess.Popen(
            command, stdout=log, stderr=log, cwd=folder, env={**os.environ, **env}
        )
    cleanup.callback(_stop, process)
    try:
        wait_for_port(port)
    except TimeoutError:
        raise AssertionError((folder / "proxy.log").read_text()) from None


def _caddy(
    cleanup: ExitStack, folder: Path, stack: LocalStack, port: int, changes: dict[str, str]
) -> None:
    text = replaced(
        replaced(CADDYFILE.read_text(), changes),
        {
            f"http://{HOST} {{": f"http://{HOST}:{port} {{",
            "root * /srv/images": f"root * {stack.images}",
            "forward_auth 127.0.0.1:8080 {": f"forward_auth 127.0.0.1:{stack.sidecar_port} {{",
        },
    )
    # No admin endpoint (two test Caddys would share its port), nothing written to $HOME.
    (folder / "Caddyfile").write_text("{\n\tadmin off\n}\n" + text)
    command = ["caddy", "run", "--adapter", "caddyfile", "--config", str(folder / "Caddyfile")]
    home = {"HOME": str(folder), "XDG_CONFIG_HOME": str(folder), "XDG_DATA_HOME": str(folder)}
    _start(cleanup, command, folder, port, **home)


def _haproxy(
    cleanup: ExitStack, folder: Path, stack: LocalStack, port: int, changes: dict[str, str]
) -> None:
    files = free_port()
    server = [sys.executable, "-m", "http.server", "--bind", "127.0.0.1", str(files),
              "--directory", str(stack.images)]  # fmt: skip
    lua = replaced(
        HAPROXY_LUA.read_text(),
        {'"http://127.0.0.1:8080/verify"': f'"http://127.0.0.1:{stack.sidecar_port}/verify"'},
    )
    (folder / "signed-url-auth.lua").write_text(lua)
    config = replaced(
        replaced(HAPROXY_CFG.read_text(), changes),
        {
            "lua-load /etc/haproxy/signed-url-auth.lua": f"lua-load {folder}/signed-url-auth.lua",
            "    bind :80\n": f"    bind 127.0.0.1:{port}\n",
            "server files 127.0.0.1:8081": f"server files 127.0.0.1:{files}",
        },
    )
    (folder / "haproxy.cfg").write_text(config)
    command = ["haproxy", "-db", "-f", str(folder / "haproxy.cfg")]
    _start(cleanup, server, folder, files)
    _start(cleanup, command, folder, port)


STARTERS = {"caddy": _caddy, "haproxy": _haproxy}


@contextmanager
def running_front(
    name: str, folder: Path, stack: LocalStack, changes: dict[str, str] | None = None
) -> Iterator[Front]:
    """``name`` (caddy or haproxy) from its shipped files, in front of ``stack``'s sidecar;
    ``changes`` (old text -> new) are an operator's own edits of the Caddyfile or
    haproxy.cfg."""
    folder.mkdir(parents=True, exist_ok=True)
    port = free_port()
    with ExitStack() as cleanup:
        STARTERS[name](cleanup, folder, stack, port, changes or {})
        yield Front(name, port, stack, folder)


def _stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=5)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


# --- asking through a front, and what the sidecar decided meanwhile -----------------------

# One line of the exposition per (source, scheme, result, decision): read with a pattern,
# not the full parser, as it is read twice around every request here.
_VERIFICATIONS = re.compile(
    r'^signed_url_verifications_total\{[^}]*result="(\w+)"[^}]*\} (\S+)$', re.M
)


def results(stack: LocalStack) -> dict[str, float]:
    """Decisions so far, by result, over every source."""
    counted: dict[str, float] = {}
    for result, value in _VERIFICATIONS.findall(metrics_text(stack)):
        counted[result] = counted.get(result, 0.0) + float(value)
    return counted


def decided(front: Front, send: Callable[[], T]) -> tuple[T, str]:
    """What ``send`` returned, and the reason the sidecar decided meanwhile ("-": it was
    never asked)."""
    before = results(front.stack)
    answer = send()
    after = results(front.stack)
    changed = [result for result, value in after.items() if value != before.get(result, 0.0)]
    assert len(changed) <= 1, changed
    return answer, (changed[0] if changed else "-")


def ask(front: Front, uri: str, *, method: str = "GET", host: str = HOST,
        headers: dict[str, str] | None = None) -> tuple[Reply, str]:  # fmt: skip
    """The proxy's answer, and the reason the sidecar decided; the client is never shown
    the sidecar's own headers (both shipped files keep them from it)."""
    reply, reason = decided(
        front, lambda: request(front.port, uri, method=method, host=host, headers=headers)
    )
    assert not [name for name in reply.headers if name.startswith("x-signature-")]
    return reply, reason


def assert_denied(front: Front, reply: Reply, status: int) -> None:
    assert reply.status == status
    assert not any_image_in(reply.body, front.stack)
