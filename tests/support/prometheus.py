"""A real Prometheus (Debian's ``/usr/bin/prometheus``) scraping a sidecar's metrics
listener every second and loading the shipped alert rules; and the shipped dashboard and
rules files it is asked about."""

from __future__ import annotations

import json
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sidecar.devtools.local_stack import free_port
from tests.support.paths import REPO

DASHBOARD = REPO / "grafana" / "dashboards" / "signed-url-sidecar.json"
RULES = REPO / "grafana" / "alerts" / "signed-url-sidecar.rules.yaml"
RULES_TEST = REPO / "grafana" / "alerts" / "signed-url-sidecar.rules.test.yaml"
PROMETHEUS, PROMTOOL = "/usr/bin/prometheus", "/usr/bin/promtool"
JOB = "signed-url-sidecar"


class Prometheus:
    def __init__(self, folder: Path, metrics_port: int) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.url = f"http://127.0.0.1:{free_port()}"
        config = folder / "prometheus.yml"
        config.write_text(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\n"
            f"rule_files:\n  - {RULES}\n"
            f"scrape_configs:\n  - job_name: {JOB}\n    scrape_interval: 1s\n"
            f"    static_configs:\n      - targets: ['127.0.0.1:{metrics_port}']\n"
        )
        command = [
            PROMETHEUS,
            f"--config.file={config}",
            f"--storage.tsdb.path={folder / 'tsdb'}",
            f"--web.listen-address={self.url.removeprefix('http://')}",
        ]
        with (folder / "prometheus.log").open("ab") as log:
            self.process = subprocess.Popen(command, stdout=log, stderr=log)
        try:
            self.until(lambda: self._get("/-/ready", raw=True) == b"Prometheus Server is Ready.\n")
        except BaseException:
            self.stop()
            raise

    def _get(self, path: str, *, raw: bool = False) -> Any:
        try:
            with urllib.request.urlopen(self.url + path, timeout=5) as answer:
                body = answer.read()
        except urllib.error.HTTPError as error:  # an API error: its JSON says why
            body = error.read()
        except OSError:
            return None
        return body if raw else json.loads(body)

    def api(self, path: str, **params: str) -> Any:
        answer = self._get(f"/api/v1/{path}?{urllib.parse.urlencode(params)}")
        assert answer is not None and answer["status"] == "success", (path, params, answer)
        return answer["data"]

    def query(self, expr: str) -> list[dict[str, Any]]:
        data = self.api("query", query=expr)
        assert data["resultType"] == "vector", expr
        return list(data["result"])

    def until(self, ready: Callable[[], object], timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while not ready():
            assert self.process.poll() is None, "prometheus exited"
            assert time.monotonic() < deadline, "timed out waiting for prometheus"
            time.sleep(0.1)

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def by(results: list[dict[str, Any]], *labels: str) -> dict[tuple[str, ...], float]:
    return {tuple(r["metric"].get(n, "") for n in labels): float(r["value"][1]) for r in results}


def active_alerts(prometheus: Prometheus) -> dict[str, dict[str, Any]]:
    return {a["labels"]["alertname"]: a for a in prometheus.api("alerts")["alerts"]}
