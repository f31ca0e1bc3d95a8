"""``folder_grant`` in real players (docs/folder-grants.md): an HLS stream made by ffmpeg
(1-second H.264 segments of a test pattern), played from one signed playlist URL through
the shipped nginx by ffmpeg itself (it carries the playlist's Set-Cookie to the segments)
for every cookie scheme, a DASH stream from its signed manifest, and the HLS stream by
hls.js in headless Chromium from a page the same nginx serves; nginx's access log shows
every segment served with the sidecar's allow."""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from typing import Any

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service

from sidecar.devtools.local_stack import LocalStack
from tests.support.folder_grants import (
    FFMPEG,
    granting_stack,
    make_dash,
    make_stream,
    served,
    signed,
)
from tests.support.paths import REPO
from tests.support.requests import HOST

PLAYERS = REPO / "tests" / "players"
HLS_JS = PLAYERS / "node_modules" / "hls.js" / "dist" / "hls.min.js"  # scripts/setup
CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    with granting_stack(tmp_path_factory.mktemp("folder-grant-players")) as running:
        yield running


@pytest.mark.parametrize("source", ["cf", "g", "ak"])
def test_ffmpeg_plays_a_stream_from_one_signed_playlist_url(stack: LocalStack, source: str) -> None:
    segments = make_stream(stack.images / source / "ffmpeg")
    assert len(segments) >= 3
    playlist = signed(stack, source, f"/{source}/ffmpeg/index.m3u8")
    play = [FFMPEG, "-hide_banner", "-loglevel", "error", "-headers", f"Host: {HOST}\r\n",
            "-i", f"{stack.nginx_url}{playlist}", "-f", "null", "-"]  # fmt: skip
    played = subprocess.run(play, timeout=60, capture_output=True, text=True, check=False)
    assert played.returncode == 0, played.stderr
    assert served(stack, f"/{source}/ffmpeg/", set(segments)) >= set(segments)


def test_ffmpeg_plays_a_dash_stream_from_one_signed_manifest_url(stack: LocalStack) -> None:
    segments = make_dash(stack.images / "cf" / "dash")
    assert len(segments) >= 4  # the init segment and one per second
    manifest = signed(stack, "cf", "/cf/dash/index.mpd")
    play = [FFMPEG, "-hide_banner", "-loglevel", "error", "-headers", f"Host: {HOST}\r\n",
            "-i", f"{stack.nginx_url}{manifest}", "-f", "null", "-"]  # fmt: skip
    played = subprocess.run(play, timeout=60, capture_output=True, text=True, check=False)
    assert played.returncode == 0, played.stderr
    assert served(stack, "/cf/dash/", set(segments)) >= set(segments)


def test_hls_js_plays_a_stream_in_chromium_from_one_signed_playlist_url(stack: LocalStack) -> None:
    assert HLS_JS.exists(), "hls.js is missing: scripts/setup installs it into tests/players"
    page = stack.images / "page"
    page.mkdir(exist_ok=True)
    shutil.copy(HLS_JS, page / "hls.min.js")
    shutil.copy(PLAYERS / "player.html", page / "player.html")
    segments = make_stream(stack.images / "cf" / "hls")
    origin = f"http://{HOST}:{stack.nginx_port}"
    playlist = origin + signed(stack, "cf", "/cf/hls/index.m3u8")
    with _chromium(origin) as driver:
        driver.get(f"{origin}/page/player.html#{playlist}")
        deadline = time.monotonic() + 30
        played: dict[str, Any] = {"fragments": []}
        while len(played["fragments"]) < len(segments) and not played.get("error"):
            assert time.monotonic() < deadline, played
            time.sleep(0.1)
            played = driver.execute_script("return window.played") or played
    assert played.get("error") is None, played
    assert sorted(played["fragments"]) == segments  # each one fetched, decoded and buffered
    assert played["cookies"] == ""  # HttpOnly: the page's scripts never see the grant
    assert served(stack, "/cf/hls/", set(segments)) >= set(segments)


class _chromium:  # noqa: N801  (used as a context manager, named as one)
    """Headless Chromium reaching the test nginx under its server name (mapped to
    loopback); that origin is treated as secure, so the ``Secure`` cookies are kept, as
    they are over HTTPS in production."""

    def __init__(self, origin: str) -> None:
        options = webdriver.ChromeOptions()
        options.binary_location = CHROMIUM
        for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                         "--disable-gpu", "--autoplay-policy=no-user-gesture-required",
                         f"--host-resolver-rules=MAP {HOST} 127.0.0.1",
                         f"--unsafely-treat-insecure-origin-as-secure={origin}"):  # fmt: skip
            options.add_argument(argument)
        self._options = options

    def __enter__(self) -> webdriver.Chrome:
        self._driver = webdriver.Chrome(options=self._options, service=Service(CHROMEDRIVER))
        self._driver.set_page_load_timeout(30)
        return self._driver

    def __exit__(self, *exc: object) -> None:
        self._driver.quit()
