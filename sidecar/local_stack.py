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

from sidecar import nginx_conf

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

    def start_sidecar(self) -> None:
        command = [sys.executable, "-m", "sidecar", "serve", "-c", str(self.config_path)]
        with (self.folder / "sidecar.log").open("ab") as log:  # the child keeps its own copy
            self.sidecar = subprocess.Popen(command, stdout=log, stderr=log)  # noqa: S603
        wait_for_http(f"{self.sidecar_url}/healthz")

    def start_nginx(self) -> None:
        conf = nginx_conf.render(
            self.folder / "nginx",
            port=self.nginx_port,
            sidecar=f"127.0.0.1:{self.sidecar_port}",
            root=self.images,
        )
        prefix = conf.parent
        error_log = str(prefix / "error.log")
        command = [nginx_binary(), "-p", str(prefix), "-c", str(conf), "-e", error_log,
                   "-g", "daemon off;"]  # fmt: skip
        with (self.folder / "nginx.stderr.log").open("ab") as log:
            self.nginx = subprocess.Popen(command, stdout=log, stderr=log)  # noqa: S603
        wait_for_port(self.nginx_port)

    def access_log_results(self) -> list[str]:
        """The ``sig=`` field (the sidecar's reason) of every nginx access log line so far."""
        path = self.folder / "nginx" / "access.log"
        lines = path.read_text(errors="replace").splitlines() if path.exists() else []
        return [line.rpartition(" sig=")[2].partition(" ")[0] for line in lines]

    def last_result(self, seen: int, timeout: float = 2.0) -> str:
        """The reason logged for the first request after ``seen`` access log lines."""
        deadline = time.monotonic() + timeout
        while True:
            results = self.access_log_results()
            if len(results) > seen:
                return results[seen]
            if time.monotonic() > deadline:
                raise TimeoutError("nginx logged no new request")
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
