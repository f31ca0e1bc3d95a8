"""nginx + the sidecar process on loopback, for the demo and the end-to-end tests."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from sidecar.devtools import nginx_conf

START_TIMEOUT = 15.0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def nginx_binary() -> str:
    found = shutil.which("nginx") or next(
        (p for p in ("/usr/sbin/nginx", "/usr/local/sbin/nginx") if os.access(p, os.X_OK)), None
    )
    if found is None:
        raise FileNotFoundError("nginx is not installed (Debian: apt-get install nginx-light)")
    return found


def wait_for_http(url: str, timeout: float = START_TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=1):  # noqa: S310 (loopback URL we built)
                return
        except urllib.error.HTTPError:
            return  # it answered: that is all we wait for
        except OSError:
            if time.monotonic() > deadline:
                raise TimeoutError(f"nothing answered at {url}") from None
            time.sleep(0.05)


def wait_for_port(port: int, timeout: float = START_TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise TimeoutError(f"nothing listens on port {port}") from None
            time.sleep(0.05)


def _field(line: str, name: str) -> str:
    return line.rpartition(f" {name}=")[2].partition(" ")[0]


@dataclass
class LocalStack:
    """Run ``sidecar serve`` and nginx (with the shipped configs) from ``folder``."""

    folder: Path
    config_text: str
    images: Path
    sidecar_port: int = field(default_factory=free_port)
    metrics_port: int = field(default_factory=free_port)
    nginx_port: int = field(default_factory=free_port)
    signing_port: int = field(default_factory=free_port)
    nginx_http_extra: str = ""  # directives added to nginx's http {} (operator variations)
    nginx_catch_all: bool = True  # False: the image server is nginx's default server
    nginx_gone: bool = False  # True: expired links answer 410 (signed-url-gone.conf)
    nginx_country: bool = False  # True: X-Country-Code from $geoip2_data_country_code
    nginx_bunny_path: bool = False  # True: Bunny's path form (signed-url-bunny-path.conf)
    sidecar: subprocess.Popen[bytes] | None = None
    nginx: subprocess.Popen[bytes] | None = None

    @property
    def config_path(self) -> Path:
        return self.folder / "sidecar.toml"

    @property
    def nginx_url(self) -> str:
        return f"http://127.0.0.1:{self.nginx_port}"

    @property
    def sidecar_url(self) -> str:
        return f"http://127.0.0.1:{self.sidecar_port}"

    @property
    def signing_url(self) -> str:
        return f"http://127.0.0.1:{self.signing_port}"

    @property
    def metrics_url(self) -> str:
        return f"http://127.0.0.1:{self.metrics_port}/metrics"

    def write_config(self, config_text: str | None = None) -> None:
        """Write the config with this stack's ports filled into ``[server]`` (and ``[signing]``)."""
        text = self.config_text if config_text is None else config_text
        server = (
            "[server]\n"
            f'listen = "127.0.0.1:{self.sidecar_port}"\n'
            f'metrics_listen = "127.0.0.1:{self.metrics_port}"\n'
        )
        text = text.replace("[server]\n", server, 1) if "[server]\n" in text else server + text
        signing = f'[signing]\nlisten = "127.0.0.1:{self.signing_port}"\n'
        self.config_path.write_text(text.replace("[signing]\n", signing, 1))

    def start(self) -> LocalStack:
        self.folder.mkdir(parents=True, exist_ok=True)
        self.write_config()
        self.start_sidecar()
        self.start_nginx()
        return self

    def start_sidecar(self, env: dict[str, str] | None = None) -> None:
        command = [sys.executable, "-m", "sidecar", "serve", "-c", str(self.config_path.absolute())]
        # Started in its own folder: `python -m` puts the working folder first on sys.path,
        # and from a checkout that would run the tree's sources, not the installed build.
        with (self.folder / "sidecar.log").open("ab") as log:  # the child keeps its own copy
            self.sidecar = subprocess.Popen(  # noqa: S603
                command, stdout=log, stderr=log, env=env, cwd=self.folder
            )
        wait_for_http(f"{self.sidecar_url}/healthz")

    def start_nginx(self) -> None:
        conf = nginx_conf.render(
            self.folder / "nginx",
            port=self.nginx_port,
            sidecar=f"127.0.0.1:{self.sidecar_port}",
            root=self.images,
            http_extra=self.nginx_http_extra,
            catch_all=self.nginx_catch_all,
            gone=self.nginx_gone,
            country=self.nginx_country,
            bunny_path=self.nginx_bunny_path,
        )
        prefix = conf.parent
        error_log = str(prefix / "error.log")
        command = [nginx_binary(), "-p", str(prefix), "-c", str(conf), "-e", error_log,
                   "-g", "daemon off;"]  # fmt: skip
        with (self.folder / "nginx.stderr.log").open("ab") as log:
            self.nginx = subprocess.Popen(command, stdout=log, stderr=log)  # noqa: S603
        wait_for_port(self.nginx_port)

    def access_log_results(self) -> dict[str, str]:
        """The ``sig=`` field (the sidecar's reason) of every access log line so far, by the
        line's ``id=`` (nginx's ``$request_id``, which nginx also sends as X-Request-ID)."""
        path = self.folder / "nginx" / "access.log"
        lines = path.read_text(errors="replace").splitlines() if path.exists() else []
        return {_field(line, "id"): _field(line, "sig") for line in lines}

    def result_for(self, request_id: str, timeout: float = 5.0) -> str:
        """The reason nginx logged for the request ``request_id``. nginx writes the line
        after it answers, so it is waited for; matching by id, never by position, means a
        late line of an earlier request can never be taken for this one."""
        deadline = time.monotonic() + timeout
        while True:
            result = self.access_log_results().get(request_id)
            if result is not None:
                return result
            if time.monotonic() > deadline:
                raise TimeoutError(f"nginx logged no request with id {request_id}")
            time.sleep(0.01)

    def stop_sidecar(self, sig: int = signal.SIGTERM) -> None:
        if self.sidecar and self.sidecar.poll() is None:
            self.sidecar.send_signal(sig)
            try:
                self.sidecar.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.sidecar.kill()
                self.sidecar.wait()

    def stop(self) -> None:
        self.stop_sidecar()
        if self.nginx and self.nginx.poll() is None:
            self.nginx.send_signal(signal.SIGQUIT)
            try:
                self.nginx.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.nginx.kill()
                self.nginx.wait()

    def __enter__(self) -> LocalStack:
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc: object) -> None:
        self.stop()
