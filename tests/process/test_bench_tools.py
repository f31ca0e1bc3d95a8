"""The benchmark tools run and print what bench/README.md shows (a tiny run of each, so
they cannot rot unnoticed; their figures are not asserted here, this machine is shared)."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from tests.support.paths import REPO

pytestmark = pytest.mark.e2e


def run(*args: str) -> str:
    # The scripts import their neighbour (bench/bench.py) from their own folder, which
    # PYTHONSAFEPATH would keep off sys.path; the build under test stays the same.
    env = {name: value for name, value in os.environ.items() if name != "PYTHONSAFEPATH"}
    result = subprocess.run(
        [sys.executable, *args],
        check=False,
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def test_profile_prints_every_stage_of_the_verify_path_for_both_builds() -> None:
    output = run("bench/hotpath.py", "--compare", "--requests", "500", "--rounds", "1")
    header = next(line for line in output.splitlines() if line.startswith("µs/request"))
    assert header.split()[1:] == ["compiled", "pure", "ratio"]
    for stage in ("parse", "extract", "decide", "record", "answer", "whole protocol path",
                  "cloudfront decide, first time", "cloudfront decide, repeated"):  # fmt: skip
        line = next(line for line in output.splitlines() if line.startswith(stage))
        compiled, pure, ratio = (float(v.replace(",", "")) for v in line.split()[-3:])
        assert compiled > 0 and pure > 0.005, line
        # The ratio of the unrounded figures; each printed one is within 0.005 of its own.
        low, high = (compiled - 0.005) / (pure + 0.005), (compiled + 0.005) / (pure - 0.005)
        assert low - 0.005 <= ratio <= high + 0.005, line


def test_scale_prints_a_row_per_size_with_no_wrong_answer() -> None:
    output = run("bench/scale.py", "--sizes", "10,200", "--seconds", "0.5")
    rows = [line.split() for line in output.splitlines() if re.match(r"\s+[0-9,]+\s+[0-9.]+", line)]
    assert [row[0] for row in rows] == ["10", "200"]
    assert all(row[-1] == "0" for row in rows)  # every answer a 200


def test_state_cost_prints_every_case_side_by_side_with_no_wrong_answer() -> None:
    output = run("bench/state_cost.py", "--rounds", "1", "--requests", "1000", "--seconds",
                 "0.4", "--rate", "500", "--revocations", "1000")  # fmt: skip
    lines = output.splitlines()
    setups = ("no [state]", "[state] path, 0 revocations", "[state] path, 1,000 revocations",
              "[state] url (Redis), 0 revocations")  # fmt: skip
    rates = [next(line for line in lines if line.startswith(name)).split() for name in setups]
    assert rates[0][-3] == rates[0][-1] == "1.00"  # the ratios are to the first setup
    assert all(float(row[-3]) > 0 and float(row[-2]) > 0 for row in rates)
    cases = ("pics, no [state]", "pics, 1,000 revocations", "pics, 1,000 revocations, one add",
             "tickets max_uses=1, SQLite", "tickets max_uses=1, Redis")  # fmt: skip
    for case in cases:
        row = next(line for line in lines if line.startswith(case)).split()
        assert row[-1] == "0", row  # every answer a 200: unrevoked, each grant's first use
        assert 180 <= int(row[-6].replace(",", "")) <= 220, row  # 500/s for 0.4 s
    assert re.search(
        r"RSS after the first read of the revocations: none [0-9.]+ MB, 1,000: ", output
    )
    assert re.search(r"the view the verify loop reads, 1,000 revocations: [0-9.]+ MB", output)
    for name in ("no [state]", "[state], 0 revocations", "[state], 1,000 revocations",
                 "[state], 1,000 prefix revocations"):  # fmt: skip
        assert re.search(rf"^{re.escape(name)} +[0-9.]+ µs +[0-9.]+ x none$", output, re.M)
    for store in ("SQLite", "Redis"):
        assert re.search(rf"^{store} \(.*\) +[0-9]+ µs a use$", output, re.M)


def test_tracing_cost_prints_every_setup_side_by_side() -> None:
    output = run("bench/tracing_cost.py", "--rounds", "1", "--requests", "500")
    setups = ("no [tracing]", "[tracing] on, collector answering",
              "[tracing] on, collector never answering",
              "[tracing] on, sample_ratio = 0")  # fmt: skip
    rows = [next(line for line in output.splitlines() if line.startswith(name)) for name in setups]
    assert rows[0].split()[-3:] == ["1.00", rows[0].split()[-2], "+0.0"]  # ratios to the first
    # CPU µs a request: process CPU time ticks in 10 ms, so 500 unsampled requests may
    # read 0 in this tiny run; a figure is printed for every setup.
    assert all(float(row.split()[-2]) >= 0 for row in rows), rows


def test_bench_feature_rows_answer_200_beside_the_plain_md5_token_row() -> None:
    # --only: the direct rows alone (every setup still starts, the 100,000 revocations read).
    output = run(
        "bench/bench.py", "--rounds", "1", "--seconds", "1", "--only",
        "sidecar direct|bare uvloop protocol, direct",
    )  # fmt: skip
    rows = {
        name: next(line for line in output.splitlines() if line.startswith(name)).split()
        for name in ("sidecar direct, md5-token, 1 process ", "sidecar direct, md5-token + rules",
                     "sidecar direct, md5-token, 100,000 revocations", "sidecar direct, jwt HS256")
    }  # fmt: skip
    for name, row in rows.items():
        assert row[-2] == "0", (name, row)  # non-2xx: every URL passes (a 401 row measures nothing)
        assert float(row[-1]) >= 0, (name, row)  # the verifier's CPU µs a request
    # The direct target, read off the same run: the sidecar's CPU against the floor's.
    assert re.search(
        r"^  direct, md5-token, CPU a request +[0-9.]+ x bare uvloop protocol, direct "
        r"\(I/O floor\) \(CPU µs\); target <= 2: (met|missed)$",
        output,
        re.M,
    ), output
    assert "via nginx" not in output.partition("against the targets")[2]  # not run: no line
    for name in list(rows)[1:]:
        assert re.search(
            rf"^{re.escape(name)}: [0-9.]+ x md5-token direct \(same run\) in CPU µs "
            r"\([0-9.]+-[0-9.]+ by round\), [0-9.]+ x its req/s$",
            output,
            re.M,
        ), output


def test_load_profile_splits_each_verifiers_cpu_by_layer() -> None:
    output = run("bench/load_profile.py", "--seconds", "1", "--warm", "0", "--top", "5")
    lines = output.splitlines()
    header = next(line for line in lines if line.startswith("layer"))
    assert header.split()[1:] == ["floor", "compiled", "pure"]
    total = next(line for line in lines if line.startswith("total (process CPU time)"))
    totals = [float(value) for value in total.split()[-3:]]
    layers = [line for line in lines[lines.index(header) + 2 : lines.index(total)]]
    assert [line.split("  ")[0] for line in layers][:3] == [
        "kernel", "interpreter (libpython)", "compiled verify path (mypyc)"
    ]  # fmt: skip
    for column, verifier_total in enumerate(totals):
        # The layers share out the process's CPU time (each printed to 0.1 µs).
        parts = sum(float(line.split()[-3 + column]) for line in layers)
        assert abs(parts - verifier_total) <= 0.06 * len(layers), (column, parts, verifier_total)
    compiled_layer = next(line for line in layers if line.startswith("compiled verify path"))
    assert float(compiled_layer.split()[-2]) > 0  # the compiled build runs mypyc's code
    assert float(compiled_layer.split()[-1]) == 0  # and the pure-Python one none of it
    assert totals[1] > totals[0] < totals[2]  # a verification costs more than the floor
    assert len([line for line in lines if re.match(r"[\d.]+%\s", line)]) == 5
