"""The sidecar's log: one JSON object a line, read back as records."""

from __future__ import annotations

import json
import time
from typing import Any

from sidecar.devtools.local_stack import LocalStack


def log_events(stack: LocalStack) -> list[dict[str, Any]]:
    lines = (stack.folder / "sidecar.log").read_text().splitlines()
    return [json.loads(line) for line in lines]


def wait_for_events(stack: LocalStack, event: str, count: int) -> None:
    deadline = time.monotonic() + 15
    while sum(e["event"] == event for e in log_events(stack)) < count:
        assert time.monotonic() < deadline, f"fewer than {count} '{event}' log lines"
        time.sleep(0.05)
