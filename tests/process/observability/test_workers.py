"""A worker that dies: replaced by the supervisor, its counts kept, its series gone."""

from __future__ import annotations

import os
import signal
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from tests.support.logs import log_events, wait_for_events
from tests.support.metrics import metrics_text
from tests.support.observed_traffic import CONFIG, VERIFICATIONS, Traffic, direct, direct_plan
from tests.support.stacks import running_stack


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
