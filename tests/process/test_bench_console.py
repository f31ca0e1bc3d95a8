"""The console's benchmark tools run and print their tables (a tiny run of each, so they
cannot rot unnoticed; their figures are not asserted here, the machine is shared)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.support.paths import REPO

pytestmark = pytest.mark.e2e


def run(*args: str) -> str:
    # The scripts import bench/tools from their own folder, which PYTHONSAFEPATH would
    # keep off sys.path; the build under test stays the same.
    env = {name: value for name, value in os.environ.items() if name != "PYTHONSAFEPATH"}
    result = subprocess.run([sys.executable, *args], check=False, cwd=REPO, env=env,
                            capture_output=True, text=True, timeout=120)  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def test_console_history_prints_the_sample_drawing_and_memory_figures() -> None:
    output = run("bench/console_history.py", "--sources", "200", "--rounds", "2")
    assert "200 sources with traffic" in output
    for line in ("one sample (read + ring):", "Live page charts drawn:", "memory (ring + last"):
        assert line in output


def test_console_cost_prints_verify_latency_without_and_with_the_console() -> None:
    output = run("bench/console_cost.py", "--sources", "20", "--seconds", "1", "--rounds", "1")
    rows = {line.split("  ")[0]: line.split() for line in output.splitlines() if "console " in line}
    assert set(rows) == {"console off", "console on"}
    assert all(row[-1] == "0" for row in rows.values())  # no wrong answer
