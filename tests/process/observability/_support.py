"""What the observability modules share: the config, a real Prometheus, the sidecar's log.

The sidecar runs with ``workers = 2`` behind the real nginx, scraped by a real Prometheus
(Debian's ``/usr/bin/prometheus``) that loads the shipped alert rules.
"""

from __future__ import annotations

import json
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeAlias

from sidecar.devtools.local_stack import LocalStack, free_port
from tests.conftest import REPO, md5_source, sidecar_config, team_toml

DASHBOARD = REPO / "grafana" / "dashboards" / "signed-url-sidecar.json"
RULES = REPO / "grafana" / "alerts" / "signed-url-sidecar.rules.yaml"
RULES_TEST = REPO / "grafana" / "alerts" / "signed-url-sidecar.rules.test.yaml"
PROMETHEUS, PROMTOOL = "/usr/bin/prometheus", "/usr/bin/promtool"
JOB = "signed-url-sidecar"
VERIFICATIONS = "signed_url_verifications_total"

NEW_TOKEN = "books-new-t0ken-5b7e1c0d"
OLD_TOKEN = "books-old-t0ken-93d0aa71"
SECRET_TOKEN = "secret-src-t0ken-c4f2e9"
REPORT_TOKEN = "report-src-t0ken-e81b37"
API_KEY = "sk-obs-" + "7f3a" * 8
WRONG_API_KEY = "sk-obs-wrong-" + "0c1d" * 6
TEAM = "books-app"

CONFIG = sidecar_config(
    # The first key signs (signing API); both verify: a rotation in progress.
    md5_source("books", "/books/", {"2026-11": NEW_TOKEN, "2025-05": OLD_TOKEN}, mode="enforce"),
    md5_source("secret", "/secret/", {"s1": SECRET_TOKEN}, mode="enforce", deny_status=403),
    md5_source("reports", "/reports/", {"r1": REPORT_TOKEN}, mode="report"),
    md5_source("public", "/public/", mode="off"),
    server={"workers": 2},
    signing={},
    teams=[team_toml(TEAM, "books", API_KEY)],
)


def broken(config_text: str) -> str:
    """Two problems, one in a key's secret fields: the refusal names fields, never values."""
    return config_text.replace(
        f'secret = "{NEW_TOKEN}"\n', f'secret = "{NEW_TOKEN}"\n  secret_env = "OBS_TOKEN"\n'
    ).replace("workers = 2\n", "workers = 2\nbogus = 1\n")


Series: TypeAlias = tuple[str, str, str, str]  # source, scheme, result, decision


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


def log_events(stack: LocalStack) -> list[dict[str, Any]]:
    lines = (stack.folder / "sidecar.log").read_text().splitlines()
    return [json.loads(line) for line in lines]


def wait_for_events(stack: LocalStack, event: str, count: int) -> None:
    deadline = time.monotonic() + 15
    while sum(e["event"] == event for e in log_events(stack)) < count:
        assert time.monotonic() < deadline, f"fewer than {count} '{event}' log lines"
        time.sleep(0.05)


def by(results: list[dict[str, Any]], *labels: str) -> dict[tuple[str, ...], float]:
    return {tuple(r["metric"].get(n, "") for n in labels): float(r["value"][1]) for r in results}


def active_alerts(prometheus: Prometheus) -> dict[str, dict[str, Any]]:
    return {a["labels"]["alertname"]: a for a in prometheus.api("alerts")["alerts"]}
