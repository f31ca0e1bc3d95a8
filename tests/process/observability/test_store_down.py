"""After every test but the sidecar's own stop (``conftest`` orders it so): the state
store killed raises the store alert on the real Prometheus, and the state age it watches
grows; nothing else pages."""

from __future__ import annotations

from tests.support.observed_run import Run
from tests.support.prometheus import JOB, active_alerts

AGE = f'max(signed_url_state_age_seconds{{job="{JOB}"}})'


def test_a_killed_store_raises_the_store_alert_and_the_state_age_grows(run: Run) -> None:
    prom = run.prometheus
    assert float(prom.query(AGE)[0]["value"][1]) < 5  # healthy: read within the last seconds
    assert "SignedUrlStateStoreErrors" not in active_alerts(prom)
    run.redis.kill()
    prom.until(lambda: "SignedUrlStateStoreErrors" in active_alerts(prom))
    alert = active_alerts(prom)["SignedUrlStateStoreErrors"]
    assert alert["state"] == "pending"  # for: 2m
    assert alert["labels"]["operation"] == "sync"
    assert alert["labels"]["instance"] == f"127.0.0.1:{run.stack.metrics_port}"
    prom.until(lambda: float(prom.query(AGE)[0]["value"][1]) >= 3)  # grows while unreachable
    assert not [n for n, a in active_alerts(prom).items() if a["labels"]["severity"] == "critical"]
