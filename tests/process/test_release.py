"""The release as an operator gets it: ``python -m build`` makes an sdist and, from it, a
wheel; a fresh virtualenv installs the wheel with the dependencies it declares, and its
``sidecar`` reports the one version and signs and verifies a URL. Also checked: the license
and version in the metadata, the files the sdist must carry, and ``requirements.lock``
pinning, with hashes, every dependency the package declares.

pip's own cache makes the install quick after the first run; the package index must be
reachable (the wheel's dependencies are resolved as a user's pip would resolve them)."""

from __future__ import annotations

import email
import itertools
import json
import os
import re
import sys
import tarfile
import tomllib
import zipfile
from email.message import Message
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

import sidecar
from tests.support.deploy import run
from tests.support.lock import LOCK, locked_releases
from tests.support.paths import REPO

pytestmark = pytest.mark.installs  # its own wheel and venv: the compiled pass only

NAME = "signed_url_sidecar"  # the distribution's file name stem
VERSION_LINE = re.compile(r'^__version__ = "(?P<version>[^"]+)"(?:  #.*)?$', re.MULTILINE)


def source_version() -> str:
    """The version as written, once, in the package's ``__init__.py``."""
    found = VERSION_LINE.findall((REPO / "sidecar" / "__init__.py").read_text())
    assert len(found) == 1, found
    return str(found[0])


def runtime_requirements() -> list[Requirement]:
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())
    return [Requirement(text) for text in pyproject["project"]["dependencies"]]


def only(folder: Path, pattern: str) -> Path:
    (found,) = folder.glob(pattern)
    return found


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``python -m build`` of the repository: the sdist, then the wheel built from it (so a
    file missing from the sdist is missing from the wheel too)."""
    out = tmp_path_factory.mktemp("dist")
    # The wheel's build compiles the verify path with mypyc (a minute, more on a busy
    # machine), from the sdist: never a compilation kept from another build of this tree.
    env = {name: value for name, value in os.environ.items() if name != "SIDECAR_MYPYC_CACHE"}
    result = run(sys.executable, "-m", "build", "--outdir", str(out), str(REPO), env=env,
                 timeout=600)  # fmt: skip
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return out


@pytest.fixture(scope="module")
def fresh_venv(dist: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A new virtualenv holding only the wheel and what its metadata asks for. The test
    venv's pip installs into it (``--python``): bootstrapping a pip inside would add
    seconds and change nothing the release is judged on."""
    venv = tmp_path_factory.mktemp("fresh") / "venv"
    created = run(sys.executable, "-m", "venv", "--without-pip", str(venv))
    assert created.returncode == 0, created.stderr
    python = str(venv / "bin" / "python")
    wheel = str(only(dist, f"{NAME}-*.whl"))
    installed = run(sys.executable, "-m", "pip", "--python", python, "install", "--quiet", wheel)
    assert installed.returncode == 0, installed.stdout + installed.stderr
    checked = run(sys.executable, "-m", "pip", "--python", python, "check")
    assert checked.returncode == 0, checked.stdout  # every declared dependency is there
    return venv


def venv_env(venv: Path) -> dict[str, str]:
    """The environment of a shell with only the fresh venv on PATH (none of the test's)."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    return {**env, "PATH": f"{venv / 'bin'}:{env['PATH']}"}


def wheel_metadata(wheel: Path) -> tuple[Message, zipfile.ZipFile]:
    archive = zipfile.ZipFile(wheel)
    name = next(n for n in archive.namelist() if n.endswith(".dist-info/METADATA"))
    return email.message_from_bytes(archive.read(name)), archive


def test_the_version_is_written_once_and_reported_everywhere(
    dist: Path, fresh_venv: Path, tmp_path: Path
) -> None:
    version = source_version()
    assert version == sidecar.__version__
    project = tomllib.loads((REPO / "pyproject.toml").read_text())
    assert "version" not in project["project"] and "version" in project["project"]["dynamic"]
    assert project["tool"]["hatch"]["version"]["path"] == "sidecar/__init__.py"
    # The verify path is compiled (hatch_build.py): the wheel is for this interpreter.
    tag = f"cp{sys.version_info.major}{sys.version_info.minor}"
    assert re.fullmatch(rf"{NAME}-{re.escape(version)}-{tag}-{tag}-linux_\w+\.whl",
                        only(dist, f"{NAME}-*.whl").name)  # fmt: skip
    assert only(dist, f"{NAME}-*.tar.gz").name == f"{NAME}-{version}.tar.gz"
    env = venv_env(fresh_venv)
    shown = run("sidecar", "--version", env=env, cwd=tmp_path)
    assert (shown.returncode, shown.stdout) == (0, f"sidecar {version} (compiled)\n"), shown.stderr
    metadata = run("python", "-c", "import importlib.metadata as m; "
                   "print(m.version('signed-url-sidecar'))", env=env, cwd=tmp_path)  # fmt: skip
    assert metadata.stdout == f"{version}\n", metadata.stderr
    # A release says what it holds: the changelog has an entry for this very version.
    assert re.search(rf"^## \[{re.escape(version)}\] - \d{{4}}-\d\d-\d\d$",
                     (REPO / "CHANGELOG.md").read_text(), re.MULTILINE)  # fmt: skip


def test_wheel_metadata_carries_the_license_version_and_dependencies(dist: Path) -> None:
    metadata, archive = wheel_metadata(only(dist, f"{NAME}-*.whl"))
    assert metadata["Name"] == "signed-url-sidecar"
    assert metadata["Version"] == source_version()
    assert metadata["License-Expression"] == "Apache-2.0"
    assert metadata.get_all("License-File") == ["LICENSE"]
    (license_file,) = [n for n in archive.namelist() if n.endswith(".dist-info/licenses/LICENSE")]
    assert archive.read(license_file) == (REPO / "LICENSE").read_bytes()
    declared = {str(Requirement(r)) for r in metadata.get_all("Requires-Dist", [])
                if "extra ==" not in r}  # fmt: skip
    assert declared == {str(r) for r in runtime_requirements()}
    for conf in sorted((REPO / "nginx").iterdir()):  # the operator's nginx files ship too
        assert archive.read(f"sidecar/nginx_files/{conf.name}") == conf.read_bytes()
    static = REPO / "sidecar" / "runtime" / "console" / "static"
    for asset in sorted(static.iterdir()):  # the console's script and stylesheet
        packaged = f"sidecar/runtime/console/static/{asset.name}"
        assert archive.read(packaged) == asset.read_bytes()


def test_sdist_carries_license_lock_and_nginx_files(dist: Path) -> None:
    sdist = only(dist, f"{NAME}-*.tar.gz")
    root = sdist.name.removesuffix(".tar.gz")
    with tarfile.open(sdist) as archive:
        members = {m.name.removeprefix(f"{root}/"): m for m in archive.getmembers()}

        def content(name: str) -> bytes:
            extracted = archive.extractfile(members[name])
            assert extracted is not None, name
            return extracted.read()

        expected = ["LICENSE", "CHANGELOG.md", "SECURITY.md", "README.md", "requirements.lock",
                    "pyproject.toml", "hatch_build.py", "sidecar/__init__.py",
                    *(f"nginx/{p.name}" for p in sorted((REPO / "nginx").iterdir()))]  # fmt: skip
        for name in expected:
            assert content(name) == (REPO / name).read_bytes(), name
        package_info = email.message_from_bytes(content("PKG-INFO"))
    assert (package_info["Version"], package_info["License-Expression"]) == (
        source_version(), "Apache-2.0")  # fmt: skip
    # The .gitignore'd local state never ships: no virtualenv, caches or built files.
    leaked = [n for n in members if n.split("/")[0] in {".venv", "dist", "build", ".git"}
              or "__pycache__" in n.split("/")]  # fmt: skip
    assert not leaked, leaked[:5]


def test_without_a_c_compiler_the_wheel_is_pure_python_and_says_so(tmp_path: Path) -> None:
    """Where no C compiler is found the build does not fail: it makes the pure-Python wheel
    (any platform), warns, and the installed ``sidecar`` reports ``(pure)``."""
    env = {**os.environ, "CC": str(tmp_path / "no-such-cc")}
    out = tmp_path / "dist"
    built = run(sys.executable, "-m", "build", "--wheel", "--outdir", str(out), str(REPO),
                env=env, timeout=600)  # fmt: skip
    assert built.returncode == 0, built.stdout[-3000:] + built.stderr[-3000:]
    assert "no C compiler found: building the pure-Python wheel" in built.stdout + built.stderr
    wheel = only(out, f"{NAME}-*.whl")
    assert wheel.name == f"{NAME}-{source_version()}-py3-none-any.whl"
    with zipfile.ZipFile(wheel) as archive:
        assert not [name for name in archive.namelist() if name.endswith(".so")]
    venv = tmp_path / "venv"
    assert run(sys.executable, "-m", "venv", "--without-pip", str(venv)).returncode == 0
    python = str(venv / "bin" / "python")
    installed = run(sys.executable, "-m", "pip", "--python", python, "install", "--quiet",
                    str(wheel), timeout=300)  # fmt: skip
    assert installed.returncode == 0, installed.stdout + installed.stderr
    shown = run("sidecar", "--version", env=venv_env(venv), cwd=tmp_path)
    assert shown.stdout == f"sidecar {source_version()} (pure)\n", shown.stderr


def test_fresh_install_signs_and_verifies_a_url(fresh_venv: Path, tmp_path: Path) -> None:
    env = venv_env(fresh_venv)
    where = run("python", "-c", "import sidecar; print(sidecar.__file__)", env=env, cwd=tmp_path)
    assert where.stdout.startswith(str(fresh_venv)), where  # the wheel's copy, not the tree's
    (tmp_path / "books-token").write_text("release-check-token-5b1e\n")
    (tmp_path / "sidecar.toml").write_text(
        '[[sources]]\nname = "books"\nscheme = "md5-token"\npath_prefix = "/books/"\n'
        '  [[sources.keys]]\n  id = "k1"\n  secret_file = "books-token"\n'
    )
    config = ["-c", str(tmp_path / "sidecar.toml")]
    checked = run("sidecar", "check-config", *config, env=env, cwd=tmp_path)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    signed = run("sidecar", "sign", *config, "--source", "books", "--expires-in", "600",
                 "/books/a.jpg?w=400", env=env, cwd=tmp_path)  # fmt: skip
    assert signed.returncode == 0, signed.stderr
    url = signed.stdout.strip()
    assert re.fullmatch(r"/books/a\.jpg\?w=400&expires=\d+&s=[0-9a-f]{32}", url), url
    cases = [(url, 0, "ok", "allow"),
             (url.replace("w=400", "w=401"), 1, "invalid", "deny"),  # one byte changed
             ("/books/a.jpg?w=400", 1, "missing", "deny")]  # fmt: skip
    for sent, exit_code, result, decision in cases:
        answer = run("sidecar", "verify", *config, sent, env=env, cwd=tmp_path)
        assert answer.returncode == exit_code, (sent, answer.stdout, answer.stderr)
        line = json.loads(answer.stdout)
        assert (line["url"], line["result"], line["decision"]) == (sent, result, decision)


def test_lock_pins_every_runtime_dependency_with_hashes() -> None:
    lines = LOCK.read_text().splitlines()
    header = "\n".join(itertools.takewhile(lambda line: line.startswith("#"), lines))
    # The command that regenerates it is written at its top.
    assert re.search(r"^#\s+pip-compile .*--generate-hashes.*--output-file=requirements\.lock"
                     r".* pyproject\.toml$", header, re.MULTILINE), header  # fmt: skip
    releases = locked_releases()
    for requirement in runtime_requirements():
        pinned = releases.get(canonicalize_name(requirement.name))
        assert pinned is not None, f"{requirement.name} is not in requirements.lock"
        assert requirement.specifier.contains(pinned), (requirement, pinned)
    # No index, mirror or local path of the machine that made it.
    options = [line for line in LOCK.read_text().splitlines()
               if line.startswith("-") or "file:" in line or "://" in line]  # fmt: skip
    assert not options, options
