"""A sidecar started by the dev tools (``LocalStack``: the demo, the benchmarks, these
tests) runs the build under test, whatever folder it is started from.

``python -m sidecar`` puts the working folder first on sys.path: started from a checkout
it would import the tree's pure-Python sources instead of the installed, compiled build
(the benchmarks once measured the pure build as the compiled one that way). The child
here is started without PYTHONSAFEPATH, from this repository's root, as a developer runs
the demo or the benchmark."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from sidecar import build
from sidecar.devtools.local_stack import LocalStack
from tests.support.configs import ONE_SOURCE_CONFIG
from tests.support.paths import REPO
from tests.support.requests import request
from tests.support.stacks import write_test_images

CONFIG = ONE_SOURCE_CONFIG


def test_a_started_sidecar_runs_the_build_under_test(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(REPO)  # a checkout: where `python -m` would find the tree's sources
    env = {name: value for name, value in os.environ.items() if name != "PYTHONSAFEPATH"}
    write_test_images(tmp_path / "images")
    stack = LocalStack(tmp_path / "stack", CONFIG, tmp_path / "images")
    stack.folder.mkdir()
    stack.write_config()
    try:
        stack.start_sidecar(env)
        metrics = request(stack.metrics_port, "/metrics", host="127.0.0.1").body.decode()
    finally:
        stack.stop()
    (info,) = [sample for family in text_string_to_metric_families(metrics)
               for sample in family.samples if sample.name == "signed_url_build_info"]  # fmt: skip
    assert info.labels["build"] == build.KIND
