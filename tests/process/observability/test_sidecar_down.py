"""Last (``conftest`` orders it so): the shared sidecar stopped raises the down alert."""

from __future__ import annotations

from tests.support.observed_run import Run
from tests.support.prometheus import active_alerts


def test_a_stopped_sidecar_raises_the_down_alert(run: Run) -> None:
    run.stack.stop_sidecar()
    prom = run.prometheus
    prom.until(lambda: "SignedUrlSidecarDown" in active_alerts(prom))
    alert = active_alerts(prom)["SignedUrlSidecarDown"]
    assert alert["state"] == "pending"  # for: 1m
    assert alert["labels"]["instance"] == f"127.0.0.1:{run.stack.metrics_port}"
