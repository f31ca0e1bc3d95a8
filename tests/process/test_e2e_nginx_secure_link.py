"""``nginx-secure-link`` against real nginx: the oracle is nginx's own ``secure_link``.

An oracle nginx (our own small config, one ``server`` per template and key, answering
``$secure_link``) sees the same URLs as the shipped nginx + sidecar stack. Both must
decide alike: nginx "1" is ``ok``, "0" is ``expired``, "" is any other denial. Where
nginx accepts a second spelling (padding, unused bits, ``MD5=``, leading zeros), the
sidecar is stricter: it denies with ``malformed`` or ``non_canonical`` and never the other
way round. The known-answer vectors are re-checked here against an oracle whose clock is
pinned with libfaketime (Debian package ``faketime``).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import signal
import subprocess
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import pytest

from sidecar.devtools.local_stack import LocalStack, free_port, nginx_binary, wait_for_port
from tests.support.configs import sidecar_config, source_toml
from tests.support.paths import REPO
from tests.support.requests import HOST, fetch_with_reason, request, verify
from tests.support.stacks import StackFactory, image_bytes

VECTORS = REPO / "tests" / "unit" / "schemes" / "vectors" / "nginx_secure_link.json"
LIBFAKETIME = Path("/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1")
LINK = "$arg_md5,$arg_expires"
BOOKS_MD5 = "$secure_link_expires$uri$arg_w $secret"
IP_MD5 = "$secure_link_expires$uri$remote_addr $secret"
HOST_MD5 = "${secure_link_expires}${host}$URI $secret"
NEW, OLD, IP_KEY, HOST_KEY = "newKey-7f3a9c", "oldKey-21bd04", "ipKey-9911aa", "hostKey-55e0"
# The spellings only nginx accepts, and what the sidecar says instead.
STRICTER = {"malformed", "non_canonical"}


class Location(NamedTuple):
    """One oracle server: the directives' values, ``$secret`` standing for ``secret``."""

    secure_link: str
    secure_link_md5: str
    secret: str


def with_secret(location: Location) -> str:
    """The template as nginx is given it: the secret written in, as in the nginx docs."""
    return _SECRET_VARIABLE.sub(location.secret, location.secure_link_md5)


_SECRET_VARIABLE = re.compile(r"\$(\{secret\}|secret\b)")


class Oracle:
    """Real nginx answering ``$secure_link`` ("1", "0" or ""), one port per location;
    ``frozen_at`` pins its clock (libfaketime, frozen) to those unix seconds."""

    def __init__(self, folder: Path, locations: Sequence[Location], frozen_at: int | None):
        self.folder, self.locations, self.frozen_at = folder, list(locations), frozen_at
        self.ports = [free_port() for _ in self.locations]
        self.process: subprocess.Popen[bytes] | None = None

    def conf(self) -> str:
        kinds = ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
        temps = "".join(f"    {kind}_temp_path {self.folder / kind};\n" for kind in kinds)
        servers = "".join(
            f"""    server {{
        listen 127.0.0.1:{port};
        location / {{
            secure_link "{loc.secure_link}";
            secure_link_md5 "{with_secret(loc)}";
            return 200 "[$secure_link]";
        }}
    }}
"""
            for port, loc in zip(self.ports, self.locations, strict=True)
        )
        return (f"worker_processes 1;\npid {self.folder / 'nginx.pid'};\n"
                f"error_log {self.folder / 'error.log'};\nevents {{ worker_connections 64; }}\n"
                f"http {{\n{temps}    access_log off;\n{servers}}}\n")  # fmt: skip

    def start(self) -> Oracle:
        self.folder.mkdir(parents=True, exist_ok=True)
        (self.folder / "nginx.conf").write_text(self.conf())
        env = dict(os.environ)
        if self.frozen_at is not None:
            assert LIBFAKETIME.exists(), "libfaketime is required (scripts/setup: faketime)"
            stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(self.frozen_at))
            env.update(LD_PRELOAD=str(LIBFAKETIME), FAKETIME=stamp, TZ="UTC")
        command = [nginx_binary(), "-p", str(self.folder), "-c", str(self.folder / "nginx.conf"),
                   "-e", str(self.folder / "error.log"), "-g", "daemon off;"]  # fmt: skip
        with (self.folder / "stderr.log").open("ab") as log:
            self.process = subprocess.Popen(command, stdout=log, stderr=log, env=env)
        for port in self.ports:
            wait_for_port(port)
        return self

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGQUIT)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def answer(self, index: int, uri: str, host: str = HOST) -> str:
        reply = request(self.ports[index], uri, host=host)
        assert reply.status == 200, (uri, reply.status)
        match = re.fullmatch(rb"\[([01]?)\]", reply.body)
        assert match is not None, reply.body
        return match.group(1).decode()

    def best(self, indexes: Sequence[int], uri: str, host: str = HOST) -> str:
        """nginx's answer with the first key that says more than "" (every key tried)."""
        answers = [self.answer(index, uri, host) for index in indexes]
        return "1" if "1" in answers else "0" if "0" in answers else ""


def b64(expression: str) -> str:
    """The nginx docs' signer, run for real: ``openssl md5 -binary | openssl base64 |
    tr +/ -_ | tr -d =``."""
    digest = subprocess.run(["openssl", "md5", "-binary"], input=expression.encode(),
                            capture_output=True, check=True).stdout  # fmt: skip
    assert digest == hashlib.md5(expression.encode()).digest()
    return base64.b64encode(digest).decode().translate(str.maketrans("+/", "-_", "="))


# --- the live comparison: oracle and stack on the real clock ---------------------------------

BOOKS = (0, 1)  # the oracle's /books/ locations: key NEW, key OLD
SECRET_IP, PUBLIC_HOST = 2, 3


@pytest.fixture(scope="module")
def oracle(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Oracle]:
    locations = [Location(LINK, BOOKS_MD5, NEW), Location(LINK, BOOKS_MD5, OLD),
                 Location(LINK, IP_MD5, IP_KEY), Location(LINK, HOST_MD5, HOST_KEY)]  # fmt: skip
    running = Oracle(tmp_path_factory.mktemp("oracle"), locations, None).start()
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture(scope="module")
def stack(shared_stacks: StackFactory) -> LocalStack:
    def source(name: str, prefix: str, md5: str, keys: dict[str, str]) -> str:
        secrets: dict[str, dict[str, Any]] = {k: {"secret": v} for k, v in keys.items()}
        return source_toml(name, "nginx-secure-link", prefix, secrets,
                           secure_link=LINK, secure_link_md5=md5)  # fmt: skip

    config = sidecar_config(
        source("books", "/books/", BOOKS_MD5, {"new": NEW, "old": OLD}),
        source("secret", "/secret/", IP_MD5, {"ip": IP_KEY}),
        source("public", "/public/", HOST_MD5, {"host": HOST_KEY}),
        server={"clock_skew": 0},
    )
    return shared_stacks(config)


def books_url(expires: int, secret: str = NEW, path: str = "/books/x.png", w: str = "640") -> str:
    return f"{path}?w={w}&md5={b64(f'{expires}{path}{w} {secret}')}&expires={expires}"


def ip_url(expires: int, ip: str = "127.0.0.1", path: str = "/secret/x.png") -> str:
    return f"{path}?md5={b64(f'{expires}{path}{ip} {IP_KEY}')}&expires={expires}"


def sidecar_says(stack: LocalStack, uri: str, host: str = HOST) -> str:
    status, body, reason = fetch_with_reason(stack, uri, host=host)
    if status == 200:
        assert body.startswith(b"\x89PNG"), uri
        return "ok"
    assert status == 403, (uri, status)
    return reason


def agree(nginx: str, ours: str) -> bool:
    return {"1": ours == "ok", "0": ours == "expired"}.get(nginx, ours not in ("ok", "expired"))


def compare(oracle: Oracle, indexes: Sequence[int], stack: LocalStack, uri: str,
            host: str = HOST) -> tuple[str, str]:  # fmt: skip
    """Both answers; fails when the sidecar allows what nginx denies, or differs other
    than by refusing a second spelling."""
    nginx, ours = oracle.best(indexes, uri, host), sidecar_says(stack, uri, host)
    assert agree(nginx, ours) or (nginx in ("1", "0") and ours in STRICTER), (uri, nginx, ours)
    return nginx, ours


def test_docs_signer_url_is_served_by_both(oracle: Oracle, stack: LocalStack) -> None:
    uri = books_url(int(time.time()) + 600)
    assert compare(oracle, BOOKS, stack, uri) == ("1", "ok")
    assert request(stack.nginx_port, uri).body == image_bytes(stack, "/books/x.png")


def test_each_byte_tampered(oracle: Oracle, stack: LocalStack) -> None:
    uri = books_url(int(time.time()) + 600)
    outcomes: dict[tuple[str, str], int] = {}
    for index in range(1, len(uri)):
        for replacement in ("A", "9"):
            if uri[index] == replacement:
                continue
            changed = uri[:index] + replacement + uri[index + 1 :]
            pair = compare(oracle, BOOKS, stack, changed)
            outcomes[pair] = outcomes.get(pair, 0) + 1
    # Tampering the hash's last character within its unused bits still passes nginx only.
    assert set(outcomes) <= {("", "invalid"), ("", "malformed"), ("", "missing"),
                             ("", "no_source"), ("1", "malformed")}, outcomes  # fmt: skip
    assert outcomes.get(("1", "malformed"), 0) <= 2
    assert sum(outcomes.values()) > 100


def test_wrong_key_and_both_rotated_keys(oracle: Oracle, stack: LocalStack) -> None:
    expires = int(time.time()) + 600
    assert compare(oracle, BOOKS, stack, books_url(expires, OLD, w="1")) == ("1", "ok")
    assert compare(oracle, BOOKS, stack, books_url(expires, NEW, w="2")) == ("1", "ok")
    assert compare(oracle, BOOKS, stack, books_url(expires, "guessed", w="3")) == ("", "invalid")


def test_expired(oracle: Oracle, stack: LocalStack) -> None:
    past = int(time.time()) - 120
    assert compare(oracle, BOOKS, stack, books_url(past)) == ("0", "expired")
    tampered = books_url(past).replace("w=640", "w=641")
    assert compare(oracle, BOOKS, stack, tampered) == ("", "invalid")


def test_ip_bound(oracle: Oracle, stack: LocalStack) -> None:
    expires = int(time.time()) + 600
    # Both see the test client's address, 127.0.0.1.
    assert compare(oracle, [SECRET_IP], stack, ip_url(expires)) == ("1", "ok")
    assert compare(oracle, [SECRET_IP], stack, ip_url(expires, "203.0.113.5")) == ("", "invalid")


def test_adjacent_variables_run_together_in_nginx_too(oracle: Oracle, stack: LocalStack) -> None:
    # IP_MD5 is nginx's example, "$uri$remote_addr" with nothing between them: a link made
    # for /secret/x.png1 and 27.0.0.1 hashes the text of /secret/x.png and 127.0.0.1.
    # nginx serves it, so the sidecar keeps nginx's answer (check-config warns instead).
    expires = int(time.time()) + 600
    made_for = f"/secret/x.png1?md5={b64(f'{expires}/secret/x.png127.0.0.1 {IP_KEY}')}"
    assert made_for == ip_url(expires, "27.0.0.1", "/secret/x.png1").partition("&")[0]
    moved = ip_url(expires, "27.0.0.1", "/secret/x.png1").replace("/x.png1?", "/x.png?")
    assert compare(oracle, [SECRET_IP], stack, moved) == ("1", "ok")


def test_host_bound(oracle: Oracle, stack: LocalStack) -> None:
    expires = int(time.time()) + 600
    uri = f"/public/x.png?md5={b64(f'{expires}{HOST}/public/x.png {HOST_KEY}')}&expires={expires}"
    assert compare(oracle, [PUBLIC_HOST], stack, uri) == ("1", "ok")
    # nginx's $host drops the port and lowercases: so does the sidecar's host.
    assert compare(oracle, [PUBLIC_HOST], stack, uri, "IMAGE.Example.com:80") == ("1", "ok")
    # The shipped nginx closes connections for other hosts (444): ask the sidecar as
    # nginx's auth subrequest would, with the host nginx would have passed.
    assert oracle.best([PUBLIC_HOST], uri, "other.example.com") == ""
    reply = verify(stack, uri, host="other.example.com", client_ip="127.0.0.1")
    assert (reply.status, reply.headers.get("x-signature-result")) == (403, "invalid")


def test_spellings(oracle: Oracle, stack: LocalStack) -> None:
    expires = int(time.time()) + 600
    uri = books_url(expires)
    digest = uri.partition("md5=")[2].partition("&")[0]
    cases = {
        uri.replace("/books/x.png", "/books/%78.png"): ("1", "ok"),  # the same $uri
        uri.replace(digest, digest + "=="): ("1", "ok"),  # urlsafe_b64encode's padding
        uri.replace("?w=640&", "?extra=1&w=640&"): ("1", "ok"),  # not covered, as in nginx
        uri.replace("/books/", "/books/./"): ("1", "non_canonical"),
        uri.replace("/books/", "/books//"): ("1", "non_canonical"),
        uri.replace(digest, digest + "="): ("1", "malformed"),
        uri.replace(digest, digest + "=x"): ("1", "malformed"),
        uri.replace("md5=", "MD5="): ("1", "malformed"),
        uri.replace("expires=", "EXPIRES="): ("1", "malformed"),
        uri + "&md5=AAAA": ("1", "non_canonical"),
        uri.replace("w=640", "w=640&W=9"): ("1", "non_canonical"),
        uri.replace("w=640", "w=640&w=9"): ("1", "non_canonical"),
        uri.replace("md5=", "%6Dd5="): ("", "malformed"),
        uri.replace(digest, digest[:-1]): ("", "malformed"),
        uri.replace(digest, digest.translate(str.maketrans("-_", "+/"))): ("", "malformed"),
        uri.partition("&expires")[0]: ("", "missing"),
        uri.replace(f"md5={digest}&", ""): ("", "missing"),
    }
    if "-" not in digest and "_" not in digest:  # the '+/' case needs one of them
        del cases[uri.replace(digest, digest.translate(str.maketrans("-_", "+/")))]
    for spelled, expected in cases.items():
        assert compare(oracle, BOOKS, stack, spelled) == expected, spelled


def test_expiry_spellings(oracle: Oracle, stack: LocalStack) -> None:
    future, past = int(time.time()) + 600, int(time.time()) - 600

    def signed_with(text: str) -> str:
        path = "/books/x.png"
        return f"{path}?w=1&md5={b64(f'{text}{path}1 {NEW}')}&expires={text}"

    cases = {
        f"0{future}": ("1", "malformed"),  # ngx_atotm reads leading zeros
        f"00{past}": ("0", "malformed"),
        "9" * 13: ("1", "malformed"),  # past parse_epoch's 12 digits
        "9223372036854775807": ("1", "malformed"),
        "9223372036854775808": ("", "malformed"),  # past time_t: nginx refuses too
        "0": ("", "malformed"),
        f"+{future}": ("", "malformed"),
        f"-{future}": ("", "malformed"),
        f"{future}x": ("", "malformed"),
        "1e10": ("", "malformed"),
        "": ("", "malformed"),
    }
    for text, expected in cases.items():
        assert compare(oracle, BOOKS, stack, signed_with(text)) == expected, text


def test_sidecar_sign_is_what_nginx_accepts(oracle: Oracle, stack: LocalStack) -> None:
    for source, url, extra, indexes in (
        ("books", "/books/x.png?w=640", [], BOOKS),
        ("secret", "/secret/x.png", ["--client-ip", "127.0.0.1"], [SECRET_IP]),
        ("public", f"https://{HOST}/public/x.png", [], [PUBLIC_HOST]),
    ):
        result = subprocess.run(
            [str(REPO / ".venv/bin/python"), "-m", "sidecar", "sign", "-c",
             str(stack.config_path), "--source", source, "--expires-in", "300", *extra, url],
            capture_output=True, text=True, check=True, timeout=30,
        )  # fmt: skip
        uri = result.stdout.strip().removeprefix(f"https://{HOST}")
        assert "&expires=" in uri
        assert compare(oracle, indexes, stack, uri) == ("1", "ok")


# --- the known-answer vectors, re-asked of nginx with its clock pinned ------------------------


def test_vectors_are_real_nginx_answers(tmp_path: Path) -> None:
    vectors: dict[str, Any] = json.loads(VECTORS.read_text("utf-8"))
    locations = sorted({Location(v["secure_link"], v["secure_link_md5"], v["secret"])
                        for v in vectors["vectors"]})  # fmt: skip
    pinned = Oracle(tmp_path / "pinned", locations, vectors["nginx_now"]).start()
    try:
        for vector in vectors["vectors"]:
            index = locations.index(
                Location(vector["secure_link"], vector["secure_link_md5"], vector["secret"])
            )
            # The oracle's client is 127.0.0.1: the vectors bound to an address use it.
            assert vector["client_ip"] == "127.0.0.1"
            got = pinned.answer(index, vector["uri"], vector["host"])
            assert got == vector["nginx"], vector["description"]
    finally:
        pinned.stop()


def test_the_clock_boundary_is_nginxs(tmp_path: Path) -> None:
    """nginx says "0" only when expires < now: at expires == now it still serves. With
    ``clock_skew = 0`` the sidecar gives nginx's answer at every second around the
    boundary (and within the second: nginx reads whole seconds); a skew of ``s`` seconds
    allows ``s`` more. nginx's clock is frozen, so no second ticks during the test."""
    from sidecar.schemes.base import KeyMaterial, VerifyRequest
    from tests.support.scheme_contract import build_source, parse

    now = 1_900_000_000
    pinned = Oracle(tmp_path / "edge", [Location(LINK, BOOKS_MD5, NEW)], now).start()
    source = build_source("nginx-secure-link", [KeyMaterial("k", secret=NEW.encode())],
                          settings={"secure_link_md5": BOOKS_MD5})  # fmt: skip
    try:
        edges = ((now + 1, "1", "ok"), (now, "1", "ok"), (now - 1, "0", "ok"),
                 (now - 2, "0", "expired"))  # fmt: skip
        for expires, nginx, skew1 in edges:
            uri = books_url(expires)
            assert pinned.answer(0, uri) == nginx, expires
            nginxs = {"1": "ok", "0": "expired"}[nginx]
            for at, skew, ours in ((now, 0, nginxs), (now + 0.5, 0, nginxs), (now, 1, skew1)):
                verdict = source.verify(VerifyRequest(parse(uri), at, skew, "127.0.0.1"))
                assert verdict.reason == ours, (expires, at, skew)
    finally:
        pinned.stop()
