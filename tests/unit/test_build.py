"""The build under test is the one scripts/test asked for, and it is whole: either every
module hatch_build.py compiles is an extension, or none is (never a mix)."""

from __future__ import annotations

import importlib
import os
import tomllib
from pathlib import Path

import sidecar
from sidecar import build
from tests.support.paths import REPO


def compiled_modules() -> list[str]:
    """The module names of the ``compile`` list in pyproject.toml (files and folders)."""
    hook = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["hatch"]["build"]
    names = []
    for entry in hook["targets"]["wheel"]["hooks"]["custom"]["compile"]:
        path = REPO / entry
        files = sorted(path.glob("*.py")) if path.is_dir() else [path]
        names += [".".join(f.relative_to(REPO).with_suffix("").parts) for f in files]
    return [name.removesuffix(".__init__") for name in names]


def test_the_build_is_the_one_the_test_run_asked_for() -> None:
    # scripts/test runs the suite twice and names each pass; a bare pytest names none.
    asked = os.environ.get("SIDECAR_TEST_BUILD", build.KIND)
    assert asked == build.KIND
    location = Path(sidecar.__file__).parent
    assert (location == REPO / "sidecar") == (build.KIND == "pure")


def test_every_listed_module_is_compiled_or_none_is() -> None:
    modules = compiled_modules()
    assert "sidecar.policy.decide" in modules and "sidecar.core.canonical" in modules
    suffixes = {name: Path(importlib.import_module(name).__file__ or "").suffix for name in modules}
    expected = ".so" if build.COMPILED else ".py"
    assert {name for name, suffix in suffixes.items() if suffix != expected} == set()
