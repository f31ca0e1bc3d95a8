"""The alert rules: each evaluates on the real Prometheus, the refused reload fires its
alert, promtool passes the rules and their unit tests, and every alert links its runbook."""

from __future__ import annotations

import re
import subprocess
from typing import Any

from tests.support.observed_run import Run
from tests.support.paths import REPO
from tests.support.prometheus import PROMTOOL, RULES, RULES_TEST, Prometheus, active_alerts

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
        assert {"summary", "description", "runbook_url"} <= set(rule["annotations"]), rule["name"]
        prom.query(rule["query"])  # the full condition evaluates (usually empty when healthy)
        assert signal_of(rule["query"]) != rule["query"], rule["name"]
        assert prom.query(signal_of(rule["query"])), f"{rule['name']}: {signal_of(rule['query'])}"
    assert RULES.read_text().count("\n        for: ") == len(rules)  # every rule has for:
    print(f"\nalert rules: {len(rules)} rules, {2 * len(rules)} queries evaluated")


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
    # runbook_url is what Alertmanager and Grafana link: an absolute URL to the section.
    anchors = re.findall(
        r'runbook_url: "https://runbooks\.example\.com/signed-url-sidecar/grafana/README\.md#(\w+)"',
        rules,
    )
    assert len(anchors) == rules.count("runbook_url:") and "runbook:" not in rules
    headings = re.findall(r"^### (\w+)$", (REPO / "grafana" / "README.md").read_text(), re.M)
    assert sorted(anchors) == sorted(h.lower() for h in headings)
    assert sorted(a.lower() for a in re.findall(r"- alert: (\w+)", rules)) == sorted(anchors)
