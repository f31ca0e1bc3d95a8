"""Wheel build hook: compiles the verify path with mypyc (the compiler mypy ships).

The modules listed under ``compile`` in ``[tool.hatch.build.targets.wheel.hooks.custom]``
become C extensions beside their ``.py`` sources, which Python imports first: the same
source, type-checked by ``mypy --strict``, is the single truth for both builds. A compiled
verification takes about a third less CPU than the pure-Python one (bench/README.md).

The build stays pure Python (a ``py3-none-any`` wheel that runs anywhere) when
``SIDECAR_PURE_PYTHON=1`` is set, or when this machine has no C compiler or no Python
headers, which it says. A compiler that is present but fails is an error, never a silent
fallback.

``SIDECAR_MYPYC_CACHE=DIR`` keeps each compilation under a digest of everything it
depends on (every source of the package, the compile list and script, the interpreter,
every package installed for the build, the compiler settings): building the same tree
again reuses it instead of compiling for a minute. The test suite builds the wheel
several times over and sets it.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import os
import platform
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from pathlib import Path
from typing import Any

from hatchling.builders.hooks.plugin.interface import BuildHookInterface
from packaging.requirements import Requirement

# Run by setuptools in a scratch folder, so it never reads this project's pyproject.toml
# and writes nothing into the source tree. One C file per module (multi_file).
_SETUP = """\
import sys

from setuptools import setup
from mypyc.build import mypycify

paths = sys.argv[sys.argv.index("--") + 1:]
del sys.argv[sys.argv.index("--"):]
setup(name="sidecar_compiled", ext_modules=mypycify(paths, opt_level="3", multi_file=True))
"""
# build_ext's public --parallel builds the extensions side by side: mypyc makes one
# shared library holding every compiled module (its C files compiled one after another)
# and a small shim extension per module. A clean compile (no cache, mypyc's own 7-8 s
# included), medians of six interleaved runs on a 2-core machine shared with other work:
# serial 60 s (52-86), --parallel 54 s (47-67), and 51 s (45-65) with the library's C
# files compiled in parallel too, which took three private distutils methods patched
# (dropped: a setuptools release may change them at any time). mypyc's `separate` groups
# would let the library build in parallel, at the price of slower calls between groups
# on the verify path.
_PARALLEL = str(os.cpu_count() or 1)


def _cannot_compile() -> str | None:
    """Why this machine cannot build C extensions for this interpreter, if it cannot."""
    command = os.environ.get("CC") or sysconfig.get_config_var("CC") or "cc"
    if shutil.which(command.split()[0]) is None:
        return "no C compiler found"
    if not Path(sysconfig.get_paths()["include"], "Python.h").is_file():
        return "no Python headers (Python.h) found"
    return None


def _name(requirement: str) -> str:
    return Requirement(requirement).name


def _version(name: str) -> str:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return "-"


class CompiledCoreHook(BuildHookInterface):
    PLUGIN_NAME = "custom"

    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        if self.target_name != "wheel" or version == "editable":
            return  # an editable install runs the sources as they are
        if os.environ.get("SIDECAR_PURE_PYTHON") == "1":
            self.app.display_info("SIDECAR_PURE_PYTHON=1: building the pure-Python wheel")
            return
        missing = _cannot_compile()
        if missing is not None:
            self.app.display_warning(
                f"{missing}: building the pure-Python wheel (about a third slower per "
                "verification; install gcc and the Python headers for the compiled one)"
            )
            return
        self._scratch = Path(tempfile.mkdtemp(prefix="sidecar-mypyc-"))
        built = self._compiled(self._scratch)
        build_data["pure_python"] = False
        build_data["infer_tag"] = True
        for path in built.rglob("*.so"):
            build_data["force_include"][str(path)] = str(path.relative_to(built))
        self.app.display_info(f"compiled {len(list(built.rglob('*.so')))} extension modules")

    def finalize(self, version: str, build_data: dict[str, Any], artifact_path: str) -> None:
        scratch = getattr(self, "_scratch", None)
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)

    def _compiled(self, scratch: Path) -> Path:
        """The folder of extensions: from the cache when it has this very build."""
        sources = [str(Path(self.root) / path) for path in self.config.get("compile", [])]
        if not sources:
            raise ValueError("the mypyc build hook needs a non-empty `compile` list")
        cache = os.environ.get("SIDECAR_MYPYC_CACHE")
        if not cache:
            return self._compile(scratch, sources)
        Path(cache).mkdir(parents=True, exist_ok=True)
        kept = Path(cache) / self._digest()
        if kept.is_dir():
            self.app.display_info(f"mypyc: reusing {kept}")
            return kept
        built = self._compile(scratch, sources)
        partial = Path(tempfile.mkdtemp(prefix=".partial-", dir=Path(cache)))
        shutil.copytree(built, partial, dirs_exist_ok=True)
        try:
            partial.rename(kept)  # atomic: a concurrent build sees all of it or nothing
        except OSError:
            shutil.rmtree(partial, ignore_errors=True)  # another build stored it first
        return built

    def _digest(self) -> str:
        package = Path(self.root) / "sidecar"
        digest = hashlib.sha256()
        for path in sorted(package.rglob("*.py")):  # what mypyc reads, compiled or imported
            digest.update(str(path.relative_to(package)).encode() + b"\0" + path.read_bytes())
        compiled = self.config.get("compile", [])  # as written: the same from any folder
        # mypyc reads the types of the runtime dependencies; the compiler obeys the settings.
        wanted = [*self.metadata.core.dependencies, *self.config.get("dependencies", [])]
        installed = sorted(f"{name}=={_version(name)}" for name in map(_name, wanted))
        settings = [os.environ.get(name, "") for name in ("CC", "CFLAGS", "CPPFLAGS", "LDFLAGS")]
        facts = (_SETUP, *compiled, sys.version, platform.platform(), *installed, *settings)
        digest.update("\0".join(facts).encode())
        return digest.hexdigest()

    def _compile(self, scratch: Path, sources: list[str]) -> Path:
        (scratch / "setup.py").write_text(_SETUP)
        built = scratch / "lib"
        command = [sys.executable, "setup.py", "build_ext", "--parallel", _PARALLEL,
                   "--build-lib", str(built), "--build-temp", str(scratch / "tmp"),
                   "--", *sources]  # fmt: skip
        result = subprocess.run(  # noqa: S603  (our own interpreter, our own arguments)
            command, cwd=scratch, capture_output=True, text=True, check=False
        )
        if result.returncode != 0:
            raise RuntimeError(
                "mypyc failed (set SIDECAR_PURE_PYTHON=1 to build without compiling):\n"
                + result.stdout[-4000:]
                + result.stderr[-4000:]
            )
        return built
