"""Observability end to end: the sidecar with ``workers = 2`` behind the
real nginx, scraped by a real Prometheus (Debian's ``/usr/bin/prometheus``) that loads the
shipped alert rules.

A known mix of requests goes through nginx, straight to ``/verify`` over fresh connections
(so both workers serve some) and to the signing API; then the config file is swapped for
a broken one (refused, the old config keeps serving), restored, and reloaded by SIGHUP. The
counters Prometheus scraped must equal exactly what was sent, per Source and result; every
dashboard query and every alert rule is evaluated by that Prometheus and must return series;
the rules pass ``promtool check rules`` and their unit tests; no log line or label leaks a
token, API key or signature.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import shutil
import signal
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.parser import text_string_to_metric_families

import sidecar
from sidecar.devtools.local_stack import LocalStack, free_port
from tests.conftest import REPO, md5_signed, metrics_text, request, running_stack, verify

pytestmark = pytest.mark.e2e

ROOT = REPO
DASHBOARD = ROOT / "grafana" / "dashboards" / "signed-url-sidecar.json"
RULES = ROOT / "grafana" / "alerts" / "signed-url-sidecar.rules.yaml"
RULES_TEST = ROOT / "grafana" / "alerts" / "signed-url-sidecar.rules.test.yaml"
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
API_KEY_SHA256 = hashlib.sha256(API_KEY.encode()).hexdigest()


def _source(name: str, prefix: str, mode: str, keys: dict[str, str], extra: str = "") -> str:
    text = f'[[sources]]\nname = "{name}"\nscheme = "md5-token"\npath_prefix = "{prefix}"\n'
    text += f'mode = "{mode}"\n{extra}'
    for key_id, token in keys.items():
        text += f'  [[sources.keys]]\n  id = "{key_id}"\n  secret = "{token}"\n'
    return text + "\n"


CONFIG = (
    "[server]\nworkers = 2\n\n[signing]\n\n"
    # The first key signs (signing API); both verify: a rotation in progress.
    + _source("books", "/books/", "enforce", {"2026-11": NEW_TOKEN, "2025-05": OLD_TOKEN})
    + _source("secret", "/secret/", "enforce", {"s1": SECRET_TOKEN}, "deny_status = 403\n")
    + _source("reports", "/reports/", "report", {"r1": REPORT_TOKEN})
    + _source("public", "/public/", "off", {})
    + f'[[teams]]\nid = "{TEAM}"\nsource = "books"\napi_key_sha256 = ["{API_KEY_SHA256}"]\n'
)


def broken(config_text: str) -> str:
    """Two problems, one in a key's secret fields: the refusal names fields, never values."""
    return config_text.replace(
        f'secret = "{NEW_TOKEN}"\n', f'secret = "{NEW_TOKEN}"\n  secret_env = "OBS_TOKEN"\n'
    ).replace("workers = 2\n", "workers = 2\nbogus = 1\n")


Series = tuple[str, str, str, str]  # source, scheme, result, decision


@dataclass
class Traffic:
    verifications: Counter[Series] = field(default_factory=Counter)
    key_matches: Counter[tuple[str, str]] = field(default_factory=Counter)
    signing: Counter[tuple[str, str]] = field(default_factory=Counter)
    signatures: set[str] = field(default_factory=set)
    through_nginx: int = 0
    direct: int = 0

    def record(self, uri: str, series: Series, key: str | None) -> None:
        self.verifications[series] += 1
        if key is not None:
            self.key_matches[series[0], key] += 1
        self.signatures.update(re.findall(r"[?&]s=([0-9A-Za-z]{16,})", uri))


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


@dataclass
class Run:
    stack: LocalStack
    prometheus: Prometheus
    traffic: Traffic
    per_worker: dict[int, float]
    good_reload_at: float


def log_events(stack: LocalStack) -> list[dict[str, Any]]:
    lines = (stack.folder / "sidecar.log").read_text().splitlines()
    return [json.loads(line) for line in lines]


def wait_for_events(stack: LocalStack, event: str, count: int) -> None:
    deadline = time.monotonic() + 15
    while sum(e["event"] == event for e in log_events(stack)) < count:
        assert time.monotonic() < deadline, f"fewer than {count} '{event}' log lines"
        time.sleep(0.05)


@dataclass(frozen=True)
class Ask:
    """One verify request: what is sent, and what must come back and be counted."""

    uri: str
    status: int
    series: Series
    key: str | None = None  # the key that must match
    method: str = "GET"


def md5(source: str, result: str, decision: str = "deny") -> Series:
    return (source, "md5-token", result, decision)


UNROUTED_NO_SOURCE: Series = ("-", "-", "no_source", "deny")
UNROUTED_NON_CANONICAL: Series = ("-", "-", "non_canonical", "deny")
BOOKS_OK = md5("books", "ok", "allow")


def nginx_plan(now: int) -> list[Ask]:
    """Through nginx: every URI distinct, so the auth cache never absorbs a request."""
    signed, new = md5_signed, NEW_TOKEN
    asks = [Ask(signed(f"/books/x.png?w={i}", new), 200, BOOKS_OK, "2026-11") for i in range(12)]
    asks += [
        Ask(signed(f"/books/database-internals.jpg?h={i}", OLD_TOKEN), 200, BOOKS_OK, "2025-05")
        for i in range(6)
    ]
    asks += [
        Ask(signed(f"/books/x.png?hd={i}", new), 200, BOOKS_OK, "2026-11", "HEAD") for i in range(2)
    ]
    asks += [Ask(f"/books/x.png?u={i}", 401, md5("books", "missing")) for i in range(8)]
    asks += [
        Ask(
            signed(f"/books/x.png?t={i}", new).replace(f"t={i}&", f"t={i}0&"),
            401,
            md5("books", "invalid"),
        )
        for i in range(6)
    ]
    asks += [
        Ask(signed(f"/books/x.png?m={i}", new)[:-1] + "g", 401, md5("books", "malformed"))
        for i in range(3)
    ]
    asks += [
        Ask(signed(f"/books/x.png?expires={now - 3600 - i}", new), 401, md5("books", "expired"))
        for i in range(2)
    ]
    asks += [
        Ask(
            signed(f"/books/x.png?d={i}", new) + "&s=" + "ab12" * 8,
            401,
            md5("books", "non_canonical"),
        )
        for i in range(2)
    ]
    asks += [
        Ask(signed(f"/books/x.png?p={i}", new), 401, md5("books", "method"), method="POST")
        for i in range(2)
    ]
    asks += [
        Ask(signed(f"/secret/x.png?v={i}", SECRET_TOKEN), 200, md5("secret", "ok", "allow"), "s1")
        for i in range(4)
    ]
    asks += [
        Ask(signed(f"/secret/x.png?b={i}", new), 403, md5("secret", "invalid")) for i in range(3)
    ]
    asks += [
        Ask(signed(f"/reports/r.png?v={i}", REPORT_TOKEN), 200, md5("reports", "ok", "allow"), "r1")
        for i in range(3)
    ]
    asks += [
        Ask(f"/reports/r.png?u={i}", 200, md5("reports", "missing", "would_deny")) for i in range(5)
    ]
    asks += [
        Ask(
            signed(f"/reports/r.png?t={i}", REPORT_TOKEN).replace("?t=", "?t=9"),
            200,
            md5("reports", "invalid", "would_deny"),
        )
        for i in range(2)
    ]
    asks += [
        Ask(f"/public/x.png?v={i}", 200, md5("public", "unsigned_allowed", "allow"))
        for i in range(4)
    ]
    asks += [Ask(f"/other/o.png?v={i}", 403, UNROUTED_NO_SOURCE) for i in range(3)]
    odd = [
        "/books//x.png?v=0",
        "/books/%2Fx.png?v=1",
        "/books/./x.png?v=2",
        signed("/books//x.png?v=3", new),
    ]
    return asks + [Ask(uri, 403, UNROUTED_NON_CANONICAL) for uri in odd]


def direct_plan() -> list[Ask]:
    """Straight to /verify, a fresh connection each: SO_REUSEPORT spreads them over workers."""
    asks = [
        Ask(md5_signed(f"/books/x.png?direct={i}", NEW_TOKEN), 200, BOOKS_OK, "2026-11")
        for i in range(40)
    ]
    asks += [Ask(f"/secret/x.png?direct={i}", 403, md5("secret", "missing")) for i in range(20)]
    return asks + [Ask(f"/nowhere/{i}.png", 403, UNROUTED_NO_SOURCE) for i in range(20)]


def via_nginx(stack: LocalStack, traffic: Traffic, ask: Ask) -> None:
    reply = request(stack.nginx_port, ask.uri, method=ask.method)
    assert reply.status == ask.status, (ask, reply.status)
    traffic.record(ask.uri, ask.series, ask.key)
    traffic.through_nginx += 1


def direct(stack: LocalStack, traffic: Traffic, ask: Ask) -> None:
    reply = verify(stack, ask.uri, method=ask.method)
    assert (reply.status, reply.headers["x-signature-result"]) == (ask.status, ask.series[2]), ask
    traffic.record(ask.uri, ask.series, ask.key)
    traffic.direct += 1


def sign_api(
    stack: LocalStack,
    traffic: Traffic,
    url: str,
    *,
    team: str = TEAM,
    key: str | None = API_KEY,
    status: int = 200,
    result: str = "ok",
) -> str:
    path = f"/public/team/{team}/signUrl?url={urllib.parse.quote(url, safe='')}"
    headers = {"X-Api-Key": key} if key else {}
    reply = request(stack.signing_port, path, host="127.0.0.1", headers=headers)
    assert reply.status == status, (team, url, reply.body)
    traffic.signing[team if team == TEAM else "-", result] += 1
    return str(json.loads(reply.body).get("signedUrl", ""))


def send_traffic(stack: LocalStack) -> Traffic:
    traffic = Traffic()
    for ask in nginx_plan(int(time.time())):
        via_nginx(stack, traffic, ask)
    book = "https://image.example.com/books/x.png"
    for i in range(4):  # signed by the API (with the first key), then fetched through nginx
        parts = urllib.parse.urlsplit(sign_api(stack, traffic, f"{book}?api={i}"))
        via_nginx(stack, traffic, Ask(f"{parts.path}?{parts.query}", 200, BOOKS_OK, "2026-11"))
    for key in (WRONG_API_KEY, WRONG_API_KEY, None):
        sign_api(stack, traffic, book, key=key, status=401, result="unauthorized")
    for _ in range(2):
        outside = "https://image.example.com/secret/x.png"
        sign_api(stack, traffic, outside, status=400, result="bad_request")
    sign_api(stack, traffic, book, team="nobody", status=404, result="unknown_team")
    for ask in direct_plan():
        direct(stack, traffic, ask)
    return traffic


def replace_config(stack: LocalStack, text: str, event: str) -> None:
    """Swap the config file atomically (a new inode, as a Secret update does) and wait for
    each worker's file watcher to reload it."""
    seen = sum(e["event"] == event for e in log_events(stack))
    swap = stack.config_path.with_suffix(".swap")
    swap.write_text(text)
    swap.replace(stack.config_path)
    wait_for_events(stack, event, seen + 2)


def send_sighup(stack: LocalStack) -> None:
    assert stack.sidecar is not None
    seen = sum(e["event"] == "reload" for e in log_events(stack))
    os.kill(stack.sidecar.pid, signal.SIGHUP)  # the supervisor passes it to each worker
    wait_for_events(stack, "reload", seen + 2)


def per_worker_verifications(stack: LocalStack) -> dict[int, float]:
    """Each worker's own counter file, summed alone: proof of who served what."""
    start = next(e for e in log_events(stack) if e["event"] == "supervisor_start")
    environ = Path(f"/proc/{start['pids'][0]}/environ").read_bytes().split(b"\0")
    prefix = b"PROMETHEUS_MULTIPROC_DIR="
    folder = Path(next(v for v in environ if v.startswith(prefix))[len(prefix) :].decode())
    counts = {}
    for pid in start["pids"]:
        alone = stack.folder / f"worker-{pid}"
        alone.mkdir()
        shutil.copy(folder / f"counter_{pid}.db", alone)
        registry = CollectorRegistry()
        MultiProcessCollector(registry, path=str(alone))  # type: ignore[no-untyped-call]
        counts[pid] = sum(
            s.value for m in registry.collect() for s in m.samples if s.name == VERIFICATIONS
        )
    return counts


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    folder = tmp_path_factory.mktemp("observability")
    with running_stack(folder / "stack", CONFIG) as stack:
        wait_for_events(stack, "start", 2)  # both workers listen before any request
        prometheus = Prometheus(folder / "prometheus", stack.metrics_port)
        try:
            prometheus.until(lambda: prometheus.query(f'up{{job="{JOB}"}} == 1'))
            traffic = send_traffic(stack)
            good = stack.config_path.read_text()  # as rendered, with this stack's ports
            replace_config(stack, broken(good), "reload_failed")
            # The refused config left the old one serving.
            after = md5_signed("/books/x.png?after=1", NEW_TOKEN)
            direct(stack, traffic, Ask(after, 200, BOOKS_OK, "2026-11"))
            replace_config(stack, good, "reload")
            good_reload_at = time.time()
            send_sighup(stack)  # an unchanged file reloads on request too
            per_worker = per_worker_verifications(stack)
            done = time.time()
            # Every series' newest sample comes from a scrape that began after the last event.
            scraped = f'min(timestamp({VERIFICATIONS}{{job="{JOB}"}})) > {done}'
            prometheus.until(lambda: prometheus.query(scraped))
            yield Run(stack, prometheus, traffic, per_worker, good_reload_at)
        finally:
            prometheus.stop()


def by(results: list[dict[str, Any]], *labels: str) -> dict[tuple[str, ...], float]:
    return {tuple(r["metric"].get(n, "") for n in labels): float(r["value"][1]) for r in results}


# --- exact counters, whichever worker served ---------------------------------------------


def test_verification_counters_equal_what_was_sent(run: Run) -> None:
    got = by(
        run.prometheus.query(f'{VERIFICATIONS}{{job="{JOB}"}}'),
        "source",
        "scheme",
        "result",
        "decision",
    )
    expected = {series: float(n) for series, n in run.traffic.verifications.items()}
    assert {series: n for series, n in got.items() if n} == expected
    # Series initialised from the config show 0, not "no data".
    assert got[("books", "md5-token", "unknown_key", "deny")] == 0
    assert got[("public", "md5-token", "method", "deny")] == 0
    total = run.traffic.through_nginx + run.traffic.direct
    [row] = run.prometheus.query(f'sum({VERIFICATIONS}{{job="{JOB}"}})')
    assert float(row["value"][1]) == total
    print(
        f"\nrequests: {run.traffic.through_nginx} through nginx, {run.traffic.direct} direct, "
        f"{sum(run.traffic.signing.values())} to the signing API; "
        f"{len(expected)} series matched exactly"
    )


def test_both_workers_served_and_their_sum_is_exact(run: Run) -> None:
    assert len(run.per_worker) == 2
    assert all(count > 0 for count in run.per_worker.values()), run.per_worker
    assert sum(run.per_worker.values()) == sum(run.traffic.verifications.values())


def test_latency_key_signing_and_reload_counters_are_exact(run: Run) -> None:
    prom, traffic = run.prometheus, run.traffic
    per_source = Counter[str]()
    for series, n in traffic.verifications.items():
        per_source[series[0]] += n
    counts = by(
        prom.query(f'signed_url_verification_duration_seconds_count{{job="{JOB}"}}'), "source"
    )
    assert {k: v for k, v in counts.items() if v} == {(s,): float(n) for s, n in per_source.items()}
    keys = by(prom.query(f'signed_url_key_matches_total{{job="{JOB}"}}'), "source", "key")
    assert keys == {k: float(traffic.key_matches[k]) for k in keys}
    assert set(traffic.key_matches) == set(keys)  # every key of the config has a series
    signing = by(prom.query(f'signed_url_signing_requests_total{{job="{JOB}"}}'), "team", "result")
    assert {k: v for k, v in signing.items() if v} == {
        k: float(n) for k, n in traffic.signing.items()
    }
    reloads = by(prom.query(f'signed_url_config_reloads_total{{job="{JOB}"}}'), "result")
    # Per worker: the refused file, the fixed file, then SIGHUP.
    assert reloads == {("failure",): 2.0, ("success",): 4.0}
    # Every worker's stamp (with or without a pid label) moved on at the SIGHUP reload.
    stamp = "signed_url_config_last_reload_success_timestamp_seconds"
    [oldest] = prom.query(f'min({stamp}{{job="{JOB}"}})')
    [newest] = prom.query(f'max({stamp}{{job="{JOB}"}})')
    assert (
        run.good_reload_at <= float(oldest["value"][1]) <= float(newest["value"][1]) <= time.time()
    )
    build = by(prom.query(f'max by (version) (signed_url_build_info{{job="{JOB}"}})'), "version")
    assert build == {(sidecar.__version__,): 1.0}


# --- the dashboard ---------------------------------------------------------------------------


def dashboard_targets() -> list[tuple[str, dict[str, Any]]]:
    panels = json.loads(DASHBOARD.read_text())["panels"]
    return [(panel["title"], target) for panel in panels for target in panel.get("targets", [])]


def expand(expr: str, source: str) -> str:
    text = expr.replace("$__rate_interval", "1m").replace("$source", source)
    assert "$" not in text, f"unknown variable in {expr}"
    return text


def test_dashboard_uses_the_datasource_and_source_variables() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    assert 36 <= dashboard["schemaVersion"] <= 41
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    source = variables["source"]
    assert source["definition"] == f"label_values({VERIFICATIONS}, source)"
    assert source["multi"] and source["includeAll"] and source["allValue"] == ".*"
    assert source["datasource"]["uid"] == "${datasource}"
    targets = dashboard_targets()
    assert len(targets) >= 14
    for panel in dashboard["panels"]:
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, panel["title"]
    for title, target in targets:
        assert target["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, title
        per_source = re.search(r"signed_url_(verification|key_matches)", target["expr"])
        # Every metric that has a source label is filtered by the variable; others are not.
        assert ('source=~"$source"' in target["expr"]) == bool(per_source), title


def _value(row: dict[str, Any]) -> float:
    return float(row["value"][1])


def _books_allowed(rows: list[dict[str, Any]]) -> None:
    assert by(rows, "source", "result", "decision")[("books", "ok", "allow")] > 0


def _ratios(rows: list[dict[str, Any]]) -> None:
    assert all(0 <= _value(r) <= 1 for r in rows)
    # Source "-" is only ever denied: its reasons add up to a ratio of exactly 1.
    assert math.isclose(sum(_value(r) for r in rows if r["metric"]["source"] == "-"), 1.0)


def _report_sources_only(rows: list[dict[str, Any]]) -> None:
    rates = by(rows, "source", "result")
    assert {source for source, _ in rates} == {"reports"}
    assert rates["reports", "missing"] > 0 and rates["reports", "invalid"] > 0
    assert rates["reports", "expired"] == 0  # initialised: 0, not "no data"


def _every_key_used(rows: list[dict[str, Any]]) -> None:
    keys = by(rows, "source", "key")
    assert set(keys) == {
        ("books", "2026-11"),
        ("books", "2025-05"),
        ("secret", "s1"),
        ("reports", "r1"),
    }
    assert min(keys.values()) > 0


def _recent_load(rows: list[dict[str, Any]]) -> None:
    assert len(rows) == 1 and 0 <= _value(rows[0]) < 120


def _this_version(rows: list[dict[str, Any]]) -> None:
    assert [r["metric"]["version"] for r in rows] == [sidecar.__version__]


# Beyond "returns series": what a panel must show for the traffic sent ($source = All).
PANEL_CHECKS: dict[str, Callable[[list[dict[str, Any]]], None]] = {
    "Decisions per second by source and result": _books_allowed,
    "Rejection ratio by source and reason": _ratios,
    "Report mode: would-deny per second by source and reason": _report_sources_only,
    "Key usage: valid signatures per second by key": _every_key_used,
    "Time since last successful config load": _recent_load,
    "Build info": _this_version,
}


def test_every_dashboard_query_returns_series(run: Run) -> None:
    evaluated = 0
    for title, target in dashboard_targets():
        for source in (".*", "(books|reports)"):
            rows = run.prometheus.query(expand(target["expr"], source))
            evaluated += 1
            assert rows, f"{title} ({source}): {target['expr']}"
            if source == ".*" and title in PANEL_CHECKS:
                PANEL_CHECKS[title](rows)
    latency = [
        run.prometheus.query(expand(t["expr"], "books"))
        for title, t in dashboard_targets()
        if title.startswith("Verification latency")
    ]
    assert len(latency) == 2
    assert all(0 < float(rows[0]["value"][1]) <= 0.1 for rows in latency)  # p50, p99 of books
    # The source variable's own query, as Grafana runs it (label values of the metric).
    values = run.prometheus.api("label/source/values", **{"match[]": VERIFICATIONS})
    assert set(values) == {"books", "secret", "reports", "public", "-"}
    print(f"\ndashboard: {evaluated + len(latency) + 1} queries evaluated")


# --- the alert rules ------------------------------------------------------------------------

_THRESHOLD = re.compile(r"\s*(?:==|!=|>=|<=|>|<)\s*(?:bool\s+)?-?\d+(?:\.\d+)?(?:e[+-]?\d+)?\b")


def signal_of(expr: str) -> str:
    """The rule without its threshold comparisons (and ``absent``): healthy, it has series."""
    return re.sub(r"\babsent\(", "(", _THRESHOLD.sub("", expr))


def alert_rules(prometheus: Prometheus) -> list[dict[str, Any]]:
    groups = prometheus.api("rules", type="alert")["groups"]
    return [rule for group in groups for rule in group["rules"]]


def test_every_alert_rule_evaluates_and_its_signal_returns_series(run: Run) -> None:
    prom = run.prometheus
    checked = subprocess.run(
        [PROMTOOL, "check", "rules", str(RULES)], capture_output=True, text=True, check=False
    )
    [count] = re.findall(r"SUCCESS: (\d+) rules found", checked.stdout)
    prom.until(lambda: all(r["health"] == "ok" for r in alert_rules(prom)))
    rules = alert_rules(prom)
    assert len(rules) == int(count) >= 5
    for rule in rules:
        assert rule.get("lastError", "") == "" and rule["labels"]["severity"], rule["name"]
        assert {"summary", "description", "runbook"} <= set(rule["annotations"]), rule["name"]
        prom.query(rule["query"])  # the full condition evaluates (usually empty when healthy)
        assert signal_of(rule["query"]) != rule["query"], rule["name"]
        assert prom.query(signal_of(rule["query"])), f"{rule['name']}: {signal_of(rule['query'])}"
    assert RULES.read_text().count("\n        for: ") == len(rules)  # every rule has for:
    print(f"\nalert rules: {len(rules)} rules, {2 * len(rules)} queries evaluated")


def active_alerts(prometheus: Prometheus) -> dict[str, dict[str, Any]]:
    return {a["labels"]["alertname"]: a for a in prometheus.api("alerts")["alerts"]}


def test_the_refused_reload_raises_its_alert_and_nothing_else_pages(run: Run) -> None:
    prom = run.prometheus
    prom.until(lambda: "SignedUrlConfigReloadFailed" in active_alerts(prom))
    alerts = active_alerts(prom)
    assert alerts["SignedUrlConfigReloadFailed"]["state"] == "firing"
    assert alerts["SignedUrlConfigReloadFailed"]["labels"]["severity"] == "warning"
    critical = [n for n, a in alerts.items() if a["labels"]["severity"] == "critical"]
    assert critical == []


def test_promtool_checks_the_rules_and_their_unit_tests_pass() -> None:
    checked = subprocess.run(
        [PROMTOOL, "check", "rules", str(RULES)], capture_output=True, text=True, check=False
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    tested = subprocess.run(
        [PROMTOOL, "test", "rules", str(RULES_TEST)], capture_output=True, text=True, check=False
    )
    assert tested.returncode == 0, tested.stdout + tested.stderr
    assert "SUCCESS" in tested.stdout
    # Each alert of the rules file is exercised by the unit tests.
    names = set(re.findall(r"- alert: (\w+)", RULES.read_text()))
    assert names and names <= set(re.findall(r"alertname: (\w+)", RULES_TEST.read_text()))


def test_every_alert_links_its_runbook_section() -> None:
    rules = RULES.read_text()
    anchors = re.findall(r'runbook: "grafana/README\.md#(\w+)"', rules)
    headings = re.findall(r"^### (\w+)$", (ROOT / "grafana" / "README.md").read_text(), re.M)
    assert sorted(anchors) == sorted(h.lower() for h in headings)
    assert sorted(a.lower() for a in re.findall(r"- alert: (\w+)", rules)) == sorted(anchors)


# --- secrets ---------------------------------------------------------------------------------


def test_no_log_line_or_label_carries_a_secret(run: Run) -> None:
    stack = run.stack
    secrets = run.traffic.signatures | {
        NEW_TOKEN,
        OLD_TOKEN,
        SECRET_TOKEN,
        REPORT_TOKEN,
        API_KEY,
        WRONG_API_KEY,
    }
    assert len(run.traffic.signatures) >= 80  # every signature sent, good or tampered
    assert NEW_TOKEN in stack.config_path.read_text()  # the sidecar did hold these values
    events = log_events(stack)  # each line parses as JSON, or this raises
    lines = (stack.folder / "sidecar.log").read_text().splitlines()
    kinds = Counter(e["event"] for e in events)
    assert kinds["start"] == 2 and kinds["reload_failed"] == 2 and kinds["reload"] == 4
    assert kinds["deny"] > 0
    for event in events:
        if event["event"] == "deny":
            assert {"request_id", "source", "result"} <= set(event)
            assert "?" not in event["path"]  # the query (signature) is never logged
    leaks = [(s, line) for line in lines for s in secrets if s in line]
    assert leaks == []
    exposition = metrics_text(stack)
    assert [s for s in secrets if s in exposition] == []
    series = run.prometheus.api("series", **{"match[]": f'{{job="{JOB}"}}'})
    values = {value for labels in series for value in labels.values()}
    assert len(values) > 20
    assert [(s, v) for v in values for s in secrets if s in v] == []
    access_log = (stack.folder / "nginx" / "access.log").read_text()
    assert [s for s in secrets if s in access_log] == []


# --- a worker that dies ----------------------------------------------------------------------


def test_a_replaced_worker_keeps_the_counts_and_leaves_no_series_behind(tmp_path: Path) -> None:
    with running_stack(tmp_path / "stack", CONFIG, nginx=False) as stack:
        wait_for_events(stack, "start", 2)
        traffic, plan = Traffic(), direct_plan()
        for ask in plan[:40]:
            direct(stack, traffic, ask)
        start = next(e for e in log_events(stack) if e["event"] == "supervisor_start")
        dead = start["pids"][0]
        os.kill(dead, signal.SIGKILL)
        wait_for_events(stack, "start", 3)  # the supervisor started a replacement
        for ask in plan[40:]:
            direct(stack, traffic, ask)
        text = metrics_text(stack)
    counted = {
        tuple(s.labels[n] for n in ("source", "scheme", "result", "decision")): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == VERIFICATIONS and s.value
    }
    # Counters are exact across the crash: the dead worker's counts are still summed.
    assert counted == {series: float(n) for series, n in traffic.verifications.items()}
    # A dead process has no series of its own left (no build_info, no stale reload time).
    assert f'pid="{dead}"' not in text


# --- last: stop the sidecar ------------------------------------------------------------------


def test_a_stopped_sidecar_raises_the_down_alert(run: Run) -> None:
    run.stack.stop_sidecar()
    prom = run.prometheus
    prom.until(lambda: "SignedUrlSidecarDown" in active_alerts(prom))
    alert = active_alerts(prom)["SignedUrlSidecarDown"]
    assert alert["state"] == "pending"  # for: 1m
    assert alert["labels"]["instance"] == f"127.0.0.1:{run.stack.metrics_port}"
