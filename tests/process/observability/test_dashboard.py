"""The Grafana dashboard: its variables, and every query evaluated by the real Prometheus."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from typing import Any

import sidecar
from tests.support.observed_run import Run
from tests.support.observed_traffic import VERIFICATIONS
from tests.support.prometheus import DASHBOARD, JOB, by


def dashboard_targets() -> list[tuple[str, dict[str, Any]]]:
    panels = json.loads(DASHBOARD.read_text())["panels"]
    return [(panel["title"], target) for panel in panels for target in panel.get("targets", [])]


def expand(expr: str, source: str, job: str = ".*", instance: str = ".*") -> str:
    text = expr.replace("$__rate_interval", "1m").replace("$source", source)
    text = text.replace("$job", job).replace("$instance", instance)
    assert "$" not in text, f"unknown variable in {expr}"
    return text


def test_dashboard_uses_the_datasource_and_source_variables() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    assert 36 <= dashboard["schemaVersion"] <= 41
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    source = variables["source"]
    scoped = '{job=~"$job", instance=~"$instance"}'
    assert source["definition"] == f"label_values({VERIFICATIONS}{scoped}, source)"
    assert source["multi"] and source["includeAll"] and source["allValue"] == ".*"
    assert source["datasource"]["uid"] == "${datasource}"
    targets = dashboard_targets()
    assert len(targets) >= 14
    for panel in dashboard["panels"]:
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, panel["title"]
    for title, target in targets:
        assert target["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, title
        per_source = re.search(r"signed_url_(verifications_total|key_matches)", target["expr"])
        # Every metric that has a source label is filtered by the variable; others are not.
        assert ('source=~"$source"' in target["expr"]) == bool(per_source), title
        # Every selector is scoped to the chosen job and instance (one Grafana, many sidecars).
        selectors = re.findall(r"\b(?:signed_url|process)_\w+(\{[^}]*\})?", target["expr"])
        both = 'job=~"$job", instance=~"$instance"'
        assert selectors and all(both in selector for selector in selectors), title
    for panel in dashboard["panels"]:
        assert panel["fieldConfig"]["defaults"].get("unit"), f"{panel['title']} has no unit"
    for name, metric in (("job", "signed_url_build_info"), ("instance", "signed_url_build_info")):
        assert variables[name]["definition"].startswith(f"label_values({metric}"), name
    assert "job=~" in variables["instance"]["definition"]


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


def _one_revocation(rows: list[dict[str, Any]]) -> None:
    assert [_value(r) for r in rows] == [1.0]  # the URL revoked in the run


def _fresh_state(rows: list[dict[str, Any]]) -> None:
    assert len(rows) == 1 and 0 <= _value(rows[0]) < 5


def _no_store_errors(rows: list[dict[str, Any]]) -> None:
    assert by(rows, "operation") == {("sync",): 0, ("use",): 0, ("prune",): 0}


def _revoked_denials(rows: list[dict[str, Any]]) -> None:
    assert by(rows, "source", "result")[("books", "revoked")] > 0


# Beyond "returns series": what a panel must show for the traffic sent ($source = All).
PANEL_CHECKS: dict[str, Callable[[list[dict[str, Any]]], None]] = {
    "Decisions per second by source and result": _books_allowed,
    "Rejection ratio by source and reason": _ratios,
    "Report mode: would-deny per second by source and reason": _report_sources_only,
    "Key usage: valid signatures per second by key": _every_key_used,
    "Time since last successful config load": _recent_load,
    "Build info": _this_version,
    "Revocations in force by instance": _one_revocation,
    "State age: seconds since revocations were last read": _fresh_state,
    "State store errors per second by operation": _no_store_errors,
    "Revoked, used up and unavailable per second by source": _revoked_denials,
}


def test_every_dashboard_query_returns_series(run: Run) -> None:
    assert set(PANEL_CHECKS) <= {title for title, _ in dashboard_targets()}
    evaluated = 0
    for title, target in dashboard_targets():
        for source in (".*", "(books|reports)"):
            rows = run.prometheus.query(expand(target["expr"], source))
            evaluated += 1
            assert rows, f"{title} ({source}): {target['expr']}"
            if source == ".*" and title in PANEL_CHECKS:
                PANEL_CHECKS[title](rows)
    latency = [
        run.prometheus.query(expand(t["expr"], ".*", JOB))
        for title, t in dashboard_targets()
        if title.startswith("Verification latency")
    ]
    assert len(latency) == 2
    for rows in latency:  # p50, p99 per scheme (every source here is md5-token; "-": none)
        assert {row["metric"]["scheme"] for row in rows} == {"md5-token", "-"}
        assert all(0 < float(row["value"][1]) <= 0.1 for row in rows)
    # Scoped to another job, the dashboard shows nothing of this one.
    assert not run.prometheus.query(expand(dashboard_targets()[0][1]["expr"], ".*", "other"))
    # The source variable's own query, as Grafana runs it (label values of the metric).
    values = run.prometheus.api("label/source/values", **{"match[]": VERIFICATIONS})
    assert set(values) == {"books", "secret", "reports", "public", "-"}
    print(f"\ndashboard: {evaluated + len(latency) + 1} queries evaluated")
