"""The coverage-guided harness (``fuzz/fuzz_verify.py``) runs clean for a bounded time.

Each run is a subprocess, as CI and a developer run it (fuzz/README.md); new corpus
entries and crash files go to a temporary folder, never into the repository.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.figures import record
from tests.support.paths import REPO

pytestmark = pytest.mark.slow  # a bounded fuzzing campaign: not in the fast loop

FUZZ = REPO / "fuzz"
HARNESS = FUZZ / "fuzz_verify.py"
CORPUS = FUZZ / "corpus"
ATHERIS_RUNS = 250_000
ATHERIS_SECONDS = 60
RANDOM_SECONDS = 3
_DONE = re.compile(r"^Done (\d+) runs", re.MULTILINE)
_EXECUTED = re.compile(r"^stat::number_of_executed_units: (\d+)", re.MULTILINE)


def run_harness(*arguments: str, timeout: float) -> tuple[int, str]:
    result = subprocess.run(
        [sys.executable, str(HARNESS), *arguments],
        capture_output=True,
        text=True,
        errors="replace",
        timeout=timeout,
        check=False,
    )
    return result.returncode, result.stdout + result.stderr


def findings(output: str) -> str:
    """The lines that say what went wrong (for the assertion message)."""
    lines = [line for line in output.splitlines() if "WrongDecisionError" in line or "==" in line]
    return "\n".join(lines[:12]) or output[-3000:]


def test_atheris_runs_the_verify_harness_clean(tmp_path: Path) -> None:
    work = tmp_path / "corpus"
    work.mkdir()
    code, output = run_harness(
        "--driver=atheris",
        str(work),  # libFuzzer adds what it finds to the first folder only
        str(CORPUS),
        f"-dict={FUZZ / 'verify.dict'}",
        # Bounded by count (reproducible with the fixed seed) and by time (a safety cap).
        f"-runs={ATHERIS_RUNS}",
        f"-max_total_time={ATHERIS_SECONDS}",
        "-seed=1",
        "-print_final_stats=1",
        f"-artifact_prefix={tmp_path}/",
        timeout=ATHERIS_SECONDS + 40,
    )
    executed = _EXECUTED.search(output)  # printed on a finding too, unlike "Done N runs"
    inputs = int(executed.group(1)) if executed else 0
    print(f"\n[fuzz] atheris: {inputs} inputs in at most {ATHERIS_SECONDS} s, exit {code}")
    record("inputs fuzzed (atheris)", inputs)
    assert code == 0, findings(output)
    assert _DONE.search(output) is not None, output[-2000:]
    assert inputs > 1000
    assert "Instrumenting sidecar.core.canonical" in output  # coverage-guided, not blind


def test_plain_python_driver_runs_clean(tmp_path: Path) -> None:
    code, output = run_harness(
        "--driver=random",
        str(CORPUS),
        f"--seconds={RANDOM_SECONDS}",
        "--seed=1",
        f"--artifact-dir={tmp_path}",
        timeout=RANDOM_SECONDS + 40,
    )
    done = _DONE.search(output)
    print(f"\n[fuzz] plain-Python driver: {done.group(1) if done else 0} inputs, exit {code}")
    assert code == 0, findings(output)
    assert done is not None and int(done.group(1)) > 1000, output[-2000:]
    assert "wrong allows: 0" in output


def test_seed_corpus_is_signed_by_the_harness_keys(tmp_path: Path) -> None:
    """The committed seeds are exactly what the harness signs: they still verify."""
    code, output = run_harness("--driver=random", "--write-corpus", str(tmp_path), timeout=60)
    assert code == 0, output
    written = {f.name: f.read_bytes() for f in tmp_path.iterdir()}
    committed = {f.name: f.read_bytes() for f in CORPUS.iterdir()}
    assert written == committed, "fuzz/corpus is stale: regenerate it (fuzz/README.md)"
    code, output = run_harness("--driver=random", "--check-seeds", str(CORPUS), timeout=60)
    print(f"\n[fuzz] seeds: {output.splitlines()[-1]}")
    assert code == 0, output
    assert "200 ok" in output and "401 invalid" in output and "403 non_canonical" in output
