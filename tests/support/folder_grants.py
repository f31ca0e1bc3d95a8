"""What the ``folder_grant`` end-to-end modules share: a stack of the shipped nginx in front
of the sidecar with one ``folder_grant`` source per cookie scheme, a page source in mode
``off`` (the player page and hls.js), signed playlist URLs, and requests that keep every
``Set-Cookie`` nginx answers (``http.client`` keeps them all)."""

from __future__ import annotations

import http.client
import shutil
import subprocess
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import NamedTuple

from sidecar import config
from sidecar.devtools.local_stack import LocalStack
from sidecar.policy.signing import sign_url
from sidecar.schemes import cloudfront_keys
from tests.support.configs import TomlValue, cloudfront_source, sidecar_config, source_toml
from tests.support.requests import HOST
from tests.support.stacks import running_stack

ORIGIN = f"https://{HOST}"
FFMPEG = shutil.which("ffmpeg") or "ffmpeg"  # scripts/setup installs it
GCDN_KEY = {"g1": {"secret": "N3yAAtXbJ8oKd1_qzR0v-w=="}}
AKAMAI_KEY = {"a1": {"secret": "4f1c2a9e7b3d5f60718293a4b5c6d7e8f9011223344556677889aabbccddeeff"}}
# Source name -> its path prefix; each grants the folder of a signed .m3u8 (cloudfront and
# akamai: and of a .mpd; gcdn: and of a gallery's index.json).
PREFIXES = {"cf": "/cf/", "g": "/g/", "ak": "/ak/"}
# nginx serves .html and .js as such for the player page (the shipped file types images).
TYPES = "types { text/html html; text/javascript js; application/json json; }\n"


def stack_config(folder: Path) -> str:
    private, public = cloudfront_keys.new_key_pair("rsa")
    (folder / "cf.pem").write_bytes(private)
    (folder / "cf.pub.pem").write_bytes(public)
    granting: dict[str, TomlValue] = {"accept_cookies": True, "folder_grant": [".m3u8", ".mpd"]}
    sources = (
        cloudfront_source(
            "cf",
            "/cf/",
            {"KCF": (str(folder / "cf.pub.pem"), str(folder / "cf.pem"))},
            public_origin=ORIGIN,
            **granting,
        ),
        source_toml(
            "g",
            "gcdn",
            "/g/",
            GCDN_KEY,
            public_origin=ORIGIN,
            accept_cookies=True,
            folder_grant=[".m3u8", "index.json"],
        ),
        source_toml("ak", "akamai", "/ak/", AKAMAI_KEY, **granting),
        source_toml("page", "md5-token", "/page/", mode="off"),
    )
    # The auth cache is on: a playlist's answer must still never be stored.
    return sidecar_config(*sources, server={"clock_skew": 0, "cache_ttl": 60})


@contextmanager
def granting_stack(folder: Path) -> Iterator[LocalStack]:
    folder.mkdir(parents=True, exist_ok=True)
    with running_stack(folder, stack_config(folder), http_extra=TYPES) as stack:
        yield stack


def write(stack: LocalStack, files: Mapping[str, bytes]) -> None:
    for name, body in files.items():
        path = stack.images / name.lstrip("/")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(body)


def signed(
    stack: LocalStack,
    source: str,
    path: str,
    *,
    expires_in: int = 600,
    now: float | None = None,
    client_ip: str | None = None,
) -> str:
    """``path`` signed by ``source`` as an application signs it (``sign_url``)."""
    settings = config.load(stack.config_path)
    at = time.time() if now is None else now
    url = sign_url(settings, source, ORIGIN + path, now=at, expires_in=expires_in,
                   client_ip=client_ip)  # fmt: skip
    return url.removeprefix(ORIGIN)


class Answer(NamedTuple):
    status: int
    body: bytes
    set_cookies: list[str]
    reason: str  # the sidecar's, as nginx logs it (X-Signature-Result is not sent on)


def get(stack: LocalStack, uri: str, cookies: str | None = None) -> Answer:
    connection = http.client.HTTPConnection("127.0.0.1", stack.nginx_port, timeout=10)
    try:
        connection.putrequest("GET", uri, skip_host=True, skip_accept_encoding=True)
        connection.putheader("Host", HOST)
        if cookies:
            connection.putheader("Cookie", cookies)
        connection.endheaders()
        response = connection.getresponse()
        body = response.read()
        found = response.msg.get_all("Set-Cookie") or []
        request_id = response.getheader("X-Request-ID") or ""
    finally:
        connection.close()
    return Answer(response.status, body, found, stack.result_for(request_id) if request_id else "")


def cookie_header(set_cookies: list[str]) -> str:
    """The ``Cookie`` header a client sends back for these ``Set-Cookie`` values."""
    return "; ".join(value.split(";", 1)[0] for value in set_cookies)


def make_stream(folder: Path, seconds: int = 3) -> list[str]:
    """An HLS stream of 1-second H.264 segments of a test pattern; its segment names."""
    folder.mkdir(parents=True, exist_ok=True)
    make = [FFMPEG, "-hide_banner", "-loglevel", "error", "-f", "lavfi",
            "-i", f"testsrc=duration={seconds}:size=64x48:rate=10", "-c:v", "libx264",
            "-pix_fmt", "yuv420p", "-g", "10", "-f", "hls", "-hls_time", "1",
            "-hls_list_size", "0", "-hls_segment_filename", str(folder / "seg%d.ts"),
            str(folder / "index.m3u8")]  # fmt: skip
    subprocess.run(make, check=True, timeout=60, capture_output=True)
    return sorted(path.name for path in folder.glob("*.ts"))


def make_dash(folder: Path, seconds: int = 3) -> list[str]:
    """A DASH stream (``index.mpd``) of 1-second H.264 segments; its segment names."""
    folder.mkdir(parents=True, exist_ok=True)
    make = [FFMPEG, "-hide_banner", "-loglevel", "error", "-f", "lavfi",
            "-i", f"testsrc=duration={seconds}:size=64x48:rate=10", "-c:v", "libx264",
            "-pix_fmt", "yuv420p", "-g", "10", "-f", "dash", "-seg_duration", "1",
            str(folder / "index.mpd")]  # fmt: skip
    subprocess.run(make, check=True, timeout=60, capture_output=True, cwd=folder)
    return sorted(path.name for path in folder.glob("*.m4s"))


def served(stack: LocalStack, folder: str, wanted: set[str]) -> set[str]:
    """The files of ``folder`` nginx's access log shows served (200, or 206 for a range:
    ffmpeg asks for ranges) with the sidecar's
    allow; waits a little, as nginx writes a line after it answers."""
    deadline, found = time.monotonic() + 5, set[str]()
    while wanted - found and time.monotonic() < deadline:
        for line in (stack.folder / "nginx" / "access.log").read_text().splitlines():
            head = f'"GET {folder}'
            if head in line and ('" 200 ' in line or '" 206 ' in line) and " sig=ok " in line:
                found.add(line.split(head, 1)[1].split('"', 1)[0])
        time.sleep(0.05)
    return found
