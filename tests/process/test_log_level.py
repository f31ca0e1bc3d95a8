"""``sidecar serve --log-level``: the real process writes only lines at or above it."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

from sidecar.devtools.local_stack import free_port, wait_for_http
from tests.support.configs import md5_source, sidecar_config
from tests.support.requests import request
from tests.support.tokens import BOOKS_TOKEN


def test_warning_level_keeps_warnings_and_drops_start_and_denials(tmp_path: Path) -> None:
    port = free_port()
    config = tmp_path / "sidecar.toml"
    config.write_text(
        sidecar_config(
            md5_source("books", "/books/", {"k": BOOKS_TOKEN}),
            server={"listen": f"127.0.0.1:{port}"},
        )
    )
    log = tmp_path / "sidecar.log"
    command = [sys.executable, "-m", "sidecar", "serve", "-c", str(config),
               "--log-level", "warning"]  # fmt: skip
    with log.open("wb") as output:
        process = subprocess.Popen(command, stdout=output, stderr=output)
    try:
        wait_for_http(f"http://127.0.0.1:{port}/healthz")
        # A denial (info) and a request without the profile's headers (a warning).
        traefik = {"X-Forwarded-Uri": "/books/x.png", "X-Forwarded-Method": "GET"}
        assert request(port, "/verify", host="127.0.0.1", headers=traefik).status == 403
        deadline = time.monotonic() + 10
        while "proxy_headers_missing" not in log.read_text():
            assert time.monotonic() < deadline, "no proxy_headers_missing line"
            time.sleep(0.05)
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=15) == 0
    lines = [json.loads(line) for line in log.read_text().splitlines()]
    assert [line["event"] for line in lines] == ["proxy_headers_missing"]
    assert lines[0]["level"] == "warning"
