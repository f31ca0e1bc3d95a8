"""The suite's hooks and shared fixtures. Helpers live in ``tests/support/``.

Markers (registered in pyproject.toml, applied here so that no module has to remember):

- ``e2e``: every test under ``tests/process/``: it drives real processes (nginx, the
  sidecar, Prometheus, Chromium, node). ``scripts/test --fast`` leaves these out.
- ``build_independent``: the tests listed in ``BUILD_INDEPENDENT`` below check files and
  tools whose behaviour does not depend on which build of the package runs (deployment
  manifests, the image, dashboards and alerts, the Node.js examples, the demo and the
  benchmark tools, the release). With ``installs`` (a test that builds and installs its
  own copy of the package), they run once: the pure-Python pass deselects both.

Coverage (the pure-Python pass, scripts/test) follows every Python process the tests
start, except those of the tests in ``UNMEASURED``, whose bounds are times or memory.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from contextlib import ExitStack
from fnmatch import fnmatch
from pathlib import Path

import pytest

# The helper modules' asserts explain their failures like a test module's: registered
# before any of them is imported.
pytest.register_assert_rewrite("tests.support")

from sidecar.devtools.local_stack import LocalStack  # noqa: E402
from tests.support.figures import FIGURES  # noqa: E402
from tests.support.stacks import StackFactory, StackPool, running_stack  # noqa: E402

TESTS = Path(__file__).resolve().parent

# Paths (relative to tests/, shell patterns) whose tests run once, in the compiled pass.
BUILD_INDEPENDENT = {
    "process/test_deploy_*.py": "Docker, Compose, Kubernetes and VM files, with real tools",
    "process/test_release.py": "the sdist and wheel as a release builds them",
    "process/test_node_*.py": "the Node.js examples' signers and API client",
    "process/observability/test_alerts.py": "the shipped alert rules, in a real Prometheus",
    "process/observability/test_dashboard.py": "the dashboard's queries, in a real Prometheus",
    "process/test_demo.py": "scripts/demo's output",
    "process/test_bench_tools.py": "the benchmark tools (they choose their builds themselves)",
}


# Tests (relative to tests/, "path" or "path::test") whose processes run without coverage
# in the pure-Python pass: they bound times or memory of the sidecar, which coverage's
# tracing inflates (10,000 sources started under it took 7.9 s on a loaded machine).
UNMEASURED = {
    "process/test_scale.py": "10,000 sources ready in 5 s; /verify p99 during scrapes",
    "process/test_reliability.py::test_soak_*": "memory bounds over a million requests",
}
# What starts coverage in a Python process: coverage sets one, a user may set the other.
COVERAGE_STARTERS = ("COVERAGE_PROCESS_CONFIG", "COVERAGE_PROCESS_START")


def is_build_independent(path: Path) -> bool:
    relative = path.relative_to(TESTS).as_posix()
    return any(fnmatch(relative, pattern) for pattern in BUILD_INDEPENDENT)


def is_unmeasured(where: str) -> bool:
    return any(fnmatch(where, pattern) for pattern in UNMEASURED)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark by path (``e2e``, ``build_independent``); then, in the pure-Python pass
    (``SIDECAR_TEST_BUILD=pure``), deselect what runs once. Deselected, not skipped,
    whatever else the command line selects."""
    for item in items:
        if item.path.is_relative_to(TESTS / "process"):
            item.add_marker(pytest.mark.e2e)
        if is_build_independent(item.path):
            item.add_marker(pytest.mark.build_independent)
    if os.environ.get("SIDECAR_TEST_BUILD") != "pure":
        return
    once = [item for item in items if runs_once(item)]
    if once:
        config.hook.pytest_deselected(items=once)
        items[:] = [item for item in items if not runs_once(item)]


def runs_once(item: pytest.Item) -> bool:
    return any(item.get_closest_marker(name) for name in ("installs", "build_independent"))


POOLS: list[StackPool] = []  # the session's pool, for the summary


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if FIGURES:
        terminalreporter.section("reliability figures")
        for name, value in sorted(FIGURES.items()):
            terminalreporter.write_line(f"{name}: {value:,}")
    for pool in POOLS:
        terminalreporter.write_line(
            f"shared stacks: {pool.started} started for {len(pool.asked)} module requests"
        )


@pytest.fixture(autouse=True, scope="module")
def unmeasured_module(request: pytest.FixtureRequest) -> Iterator[None]:
    """The processes a module in ``UNMEASURED`` starts (its module fixtures' too: autouse
    fixtures come first in their scope) run without coverage."""
    relative = request.path.relative_to(TESTS).as_posix()
    with pytest.MonkeyPatch.context() as patch:
        if is_unmeasured(relative):
            for name in COVERAGE_STARTERS:
                patch.delenv(name, raising=False)
        yield


@pytest.fixture(autouse=True)
def unmeasured_test(request: pytest.FixtureRequest) -> Iterator[None]:
    """The processes a test in ``UNMEASURED`` starts run without coverage."""
    where = f"{request.path.relative_to(TESTS).as_posix()}::{request.node.name}"
    with pytest.MonkeyPatch.context() as patch:
        if is_unmeasured(where):
            for name in COVERAGE_STARTERS:
                patch.delenv(name, raising=False)
        yield


@pytest.fixture(scope="session")
def stack_pool(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StackPool]:
    pool = StackPool(lambda: tmp_path_factory.mktemp("shared-stack"))
    POOLS.append(pool)
    try:
        yield pool
    finally:
        pool.close()


@pytest.fixture(scope="module")
def shared_stacks(stack_pool: StackPool, request: pytest.FixtureRequest) -> StackFactory:
    """Stacks for tests that only read: the same config gets the same running stack, in
    this module and in any other (see ``StackPool``)."""
    user = request.module.__name__

    def get(config_text: str, *, nginx: bool = True) -> LocalStack:
        return stack_pool.get(config_text, nginx=nginx, user=user)

    return get


@pytest.fixture(scope="module")
def module_stacks(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StackFactory]:
    """Start stacks of this module's own, a new one each call (stopped when the module
    ends): for a module whose tests read state no other module may touch first."""
    with ExitStack() as stacks:

        def start(config_text: str, *, nginx: bool = True) -> LocalStack:
            folder = tmp_path_factory.mktemp("stack")
            return stacks.enter_context(running_stack(folder, config_text, nginx=nginx))

        yield start


@pytest.fixture
def fresh_stack(tmp_path: Path) -> Iterator[StackFactory]:
    """Start stacks owned by one test: for tests that stop, reload or count."""
    numbers = itertools.count()
    with ExitStack() as stacks:

        def start(config_text: str, *, nginx: bool = True) -> LocalStack:
            folder = tmp_path / f"stack{next(numbers)}"
            return stacks.enter_context(running_stack(folder, config_text, nginx=nginx))

        yield start
