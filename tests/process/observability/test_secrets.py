"""No log line, metric label or access log entry carries a token, API key or signature."""

from __future__ import annotations

from collections import Counter

from tests.support.logs import log_events
from tests.support.metrics import metrics_text
from tests.support.observed_run import Run
from tests.support.observed_traffic import (
    API_KEY,
    NEW_TOKEN,
    OLD_TOKEN,
    REPORT_TOKEN,
    SECRET_TOKEN,
    WRONG_API_KEY,
)
from tests.support.prometheus import JOB


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
