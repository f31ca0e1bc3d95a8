"""The image, without a Docker engine: docker/install.sh, run with the arguments of the
Dockerfile's RUN lines, builds a wheel from exactly the files the Dockerfile COPYs and
installs it into a clean venv; the Dockerfile's ENTRYPOINT + CMD start it, its HEALTHCHECK
command probes it, and a real nginx running docker/nginx.conf with the shipped snippets
serves images through it."""

from __future__ import annotations

import getpass
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from packaging.utils import canonicalize_name
from prometheus_client.parser import text_string_to_metric_families

import sidecar
from sidecar.devtools.local_stack import free_port, nginx_binary, wait_for_http, wait_for_port
from sidecar.policy.proxies import VERIFY_PATH
from tests.support.deploy import DOCKER, dockerfile, healthcheck_command, instruction, port_of, run
from tests.support.lock import locked_releases
from tests.support.paths import REPO
from tests.support.requests import request
from tests.support.tokens import md5_signed

pytestmark = pytest.mark.installs  # its own wheel and venv: the compiled pass only


def test_dockerfile_is_multi_stage_non_root_and_health_checked() -> None:
    stages = instruction("FROM")
    assert len(stages) == 2 and stages[0].endswith(" AS build")
    # mypyc needs a C compiler in the build stage (the only stage that installs packages).
    (packages,) = [arguments for name, arguments in dockerfile() if "apt-get install" in arguments]
    assert {"gcc", "libc6-dev"} <= set(packages.split()), packages
    assert "hatch_build.py" in instruction("COPY")[0].split()  # the build hook it compiles with
    (base,) = [arg for name, arg in dockerfile() if name == "ARG" and "PYTHON_IMAGE" in arg]
    assert re.fullmatch(r"PYTHON_IMAGE=python:3\.1[1-9]-slim(-\w+)?", base)
    (user,) = instruction("USER")
    uid, gid = (int(part) for part in user.split(":"))
    assert uid > 0 and gid > 0
    assert json.loads(instruction("ENTRYPOINT")[0]) == ["sidecar"]
    config = tomllib.loads((DOCKER / "sidecar.toml").read_text())["server"]
    exposed = {int(port) for port in instruction("EXPOSE")[0].split()}
    assert exposed == {port_of(config["listen"]), port_of(config["metrics_listen"])}
    assert healthcheck_command()[:2] == ["python", "-c"]  # no curl needed in the image
    assert not [arguments for _, arguments in dockerfile() if "curl" in arguments]


def install_steps() -> list[list[str]]:
    """The arguments the Dockerfile's RUN lines give docker/install.sh, in order."""
    steps = []
    mount = "--mount=type=bind,source=docker/install.sh,target=/usr/local/bin/install-sidecar"
    for command in instruction("RUN"):
        words = shlex.split(command)
        if mount in words:
            start = words.index("/usr/local/bin/install-sidecar")
            assert words[start - 1] == "sh"
            steps.append(words[start + 1 : start + 4])
    return steps


@pytest.fixture(scope="module")
def image_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """docker/install.sh's build and final steps, into folders standing for the image's."""
    folder = tmp_path_factory.mktemp("image")
    context = folder / "src"  # the build stage's WORKDIR, filled by its COPY lines
    for copy in instruction("COPY"):
        *sources, destination = copy.split()
        target = context / destination
        for source in sources:
            if (REPO / source).is_dir():  # a folder's contents go into the destination
                shutil.copytree(REPO / source, target, ignore=shutil.ignore_patterns("__pycache__"))
            else:
                target.mkdir(parents=True, exist_ok=True)
                shutil.copy(REPO / source, target / Path(source).name)
    places = {"/src": context, "/wheels": folder / "wheels",
              "/opt/signed-url-sidecar": folder / "venv"}  # fmt: skip
    steps = install_steps()
    assert [step[0] for step in steps] == ["wheel", "venv"]
    env = {**os.environ, "PYTHON": sys.executable}
    for verb, *paths in steps:
        command = ["sh", str(DOCKER / "install.sh"), verb, *(str(places[p]) for p in paths)]
        result = run(*command, env=env, cwd=folder)
        assert result.returncode == 0, result.stdout + result.stderr
    (env_line,) = instruction("ENV")
    assert "PATH=/opt/signed-url-sidecar/bin:$PATH" in env_line  # ENTRYPOINT finds it
    return places["/opt/signed-url-sidecar"]


def image_env(venv: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    return {**env, "PATH": f"{venv / 'bin'}:{env['PATH']}", "PYTHONDONTWRITEBYTECODE": "1"}


@pytest.fixture(scope="module")
def image_sidecar(
    image_venv: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Any]]:
    """The venv's ``sidecar``, started as ENTRYPOINT + CMD with docker/sidecar.toml on loopback."""
    folder = tmp_path_factory.mktemp("image-run")
    ports = {"listen": free_port(), "metrics_listen": free_port()}
    config = (DOCKER / "sidecar.toml").read_text()
    for name, port in ports.items():
        config, count = re.subn(rf'^{name} = "0\.0\.0\.0:\d+"', f'{name} = "127.0.0.1:{port}"',
                                config, flags=re.MULTILINE)  # fmt: skip
        assert count == 1, name
    shutil.copy(DOCKER / "demo-books-token", folder / "books-token")
    config = config.replace('"/run/secrets/books-token"', f'"{folder / "books-token"}"')
    (folder / "sidecar.toml").write_text(config)
    command = json.loads(instruction("ENTRYPOINT")[0]) + json.loads(instruction("CMD")[0])
    command[command.index("-c") + 1] = str(folder / "sidecar.toml")
    env = image_env(image_venv)
    where = run("python", "-c", "import sidecar; print(sidecar.__file__)", env=env, cwd=folder)
    assert where.stdout.startswith(str(image_venv)), where  # the image's copy, not the tree's
    with (folder / "sidecar.log").open("wb") as log:
        process = subprocess.Popen(command, env=env, cwd=folder, stdout=log, stderr=log)
    try:
        wait_for_http(f"http://127.0.0.1:{ports['listen']}/healthz")
        yield {**ports, "folder": folder, "token": (folder / "books-token").read_text().strip()}
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest.mark.e2e
def test_image_venv_is_compiled_and_has_no_pip(image_venv: Path) -> None:
    site = next(image_venv.glob("lib/python3*/site-packages"))
    modules = {p.stem for p in (site / "sidecar").glob("*.py")}
    compiled = {p.name.partition(".")[0] for p in (site / "sidecar" / "__pycache__").iterdir()}
    assert modules and modules <= compiled  # nothing to write on a read-only filesystem
    assert run(str(image_venv / "bin" / "python"), "-c", "import pip").returncode != 0


@pytest.mark.e2e
def test_image_venv_holds_exactly_the_locked_releases(image_venv: Path) -> None:
    listing = "import importlib.metadata as m\nfor d in m.distributions(): print(d.name, d.version)"
    listed = run(str(image_venv / "bin" / "python"), "-c", listing)
    assert listed.returncode == 0, listed.stderr
    installed = {}
    for line in listed.stdout.splitlines():
        name, version = line.split()
        installed[canonicalize_name(name)] = version
    assert installed == {**locked_releases(), "signed-url-sidecar": sidecar.__version__}


def test_image_install_refuses_a_wheel_dir_without_its_lock(
    image_venv: Path, tmp_path: Path
) -> None:
    """Without requirements.lock the final stage stops: it never falls back to resolving
    unpinned dependencies. (With it, the venv above holds exactly its releases.)"""
    (wheel,) = (image_venv.parent / "wheels").glob("signed_url_sidecar-*.whl")
    shutil.copy(wheel, tmp_path)
    venv = tmp_path / "venv"
    env = {**os.environ, "PYTHON": sys.executable}
    result = run("sh", str(DOCKER / "install.sh"), "venv", str(tmp_path), str(venv), env=env)
    assert result.returncode != 0 and "requirements.lock is missing" in result.stderr, result
    assert not venv.exists()


@pytest.mark.e2e
def test_image_entrypoint_serves_health_and_verifies(image_sidecar: dict[str, Any]) -> None:
    port = image_sidecar["listen"]
    assert request(port, "/healthz", host="127.0.0.1").status == 200
    assert request(port, "/readyz", host="127.0.0.1").status == 200
    uri = "/books/database-internals.png?w=400"
    for sent, status, reason in ((uri, 401, "missing"),
                                 (md5_signed(uri, image_sidecar["token"]), 200, "ok")):  # fmt: skip
        headers = {"X-Original-URI": sent, "X-Original-Method": "GET",
                   "X-Original-Host": "localhost", "X-Real-IP": "203.0.113.7"}  # fmt: skip
        reply = request(port, VERIFY_PATH, host="127.0.0.1", headers=headers)
        assert (reply.status, reply.headers["x-signature-result"]) == (status, reason)
    metrics = request(image_sidecar["metrics_listen"], "/metrics", host="127.0.0.1").body
    allowed = [s for family in text_string_to_metric_families(metrics.decode())
               for s in family.samples if s.name == "signed_url_verifications_total"
               and s.labels["result"] == "ok" and s.value > 0]  # fmt: skip
    assert [s.labels["source"] for s in allowed] == ["books"]
    # The build stage has a C compiler: the image runs the mypyc-compiled verify path.
    (info,) = [s for family in text_string_to_metric_families(metrics.decode())
               for s in family.samples if s.name == "signed_url_build_info"]  # fmt: skip
    assert info.labels == {"version": sidecar.__version__, "build": "compiled"}


@pytest.mark.e2e
def test_image_healthcheck_command_passes_and_fails(
    image_venv: Path, image_sidecar: dict[str, Any]
) -> None:
    command = healthcheck_command()
    env = image_env(image_venv)
    port = image_sidecar["listen"]
    cases = {f"http://127.0.0.1:{port}/healthz": 0,
             f"http://127.0.0.1:{port}/nothing-here": 1,  # a 404 is unhealthy
             f"http://127.0.0.1:{free_port()}/healthz": 1}  # fmt: skip
    for url, expected in cases.items():
        result = run(*command, env={**env, "SIDECAR_HEALTHCHECK_URL": url})
        assert result.returncode == expected, (url, result.stderr)
    (env_line,) = instruction("ENV")
    found = re.search(r"SIDECAR_HEALTHCHECK_URL=(\S+)", env_line)
    assert found is not None, env_line
    default = found.group(1)
    listen = tomllib.loads((DOCKER / "sidecar.toml").read_text())["server"]["listen"]
    assert urllib.parse.urlsplit(default).port == port_of(listen)


def render_container_nginx(folder: Path, port: int, sidecar_port: int) -> Path:
    """docker/nginx.conf and the shipped snippets, changed only where a local run must."""
    changes = {
        DOCKER / "nginx.conf": [
            # The test runs as the machine's user; images and logs live in private folders.
            ("pid /tmp/nginx.pid;", f"user {getpass.getuser()};\npid {folder}/nginx.pid;"),
            ("error_log /dev/stderr", f"error_log {folder}/error.log"),
            ("access_log /dev/stdout", f"access_log {folder}/access.log"),
            ("_temp_path /tmp/", f"_temp_path {folder}/tmp-"),
            ("listen 8000 default_server;", f"listen 127.0.0.1:{port} default_server;"),
            ("listen 8000;", f"listen 127.0.0.1:{port};"),
            ("root /srv/images;", f"root {DOCKER / 'images'};"),
        ],
        REPO / "nginx" / "signed-url-sidecar.conf": [
            ("server 127.0.0.1:8080;", f"server 127.0.0.1:{sidecar_port};"),
            ("/var/lib/nginx/signed-url-auth", f"{folder}/auth-cache"),
        ],
        REPO / "nginx" / "signed-url-auth.conf": [],
    }
    for source, replacements in changes.items():
        text = source.read_text()
        for old, new in replacements:
            assert old in text, f"{source.name}: '{old}' is gone"
            text = text.replace(old, new)
        (folder / source.name).write_text(text)
    return folder / "nginx.conf"


@pytest.mark.e2e
def test_container_nginx_serves_images_through_the_image_sidecar(
    image_sidecar: dict[str, Any], tmp_path: Path
) -> None:
    port = free_port()
    conf = render_container_nginx(tmp_path, port, image_sidecar["listen"])
    command = [nginx_binary(), "-p", str(tmp_path), "-c", str(conf), "-e",
               str(tmp_path / "error.log"), "-g", "daemon off;"]  # fmt: skip
    with (tmp_path / "nginx.out").open("wb") as log:
        nginx = subprocess.Popen(command, stdout=log, stderr=log)
    try:
        wait_for_port(port)
        token = image_sidecar["token"]
        image = (DOCKER / "images" / "books" / "database-internals.png").read_bytes()
        uri = md5_signed("/books/database-internals.png?w=400", token)
        reply = request(port, uri, host="localhost")
        assert (reply.status, reply.body) == (200, image)
        assert request(port, uri.replace("w=400", "w=401"), host="localhost").status == 401
        assert request(port, "/books/database-internals.png", host="localhost").status == 401
        encoded = md5_signed("/books/caf%C3%A9%20menu.png", token)
        assert request(port, encoded, host="image.example.com").status == 200
        assert request(port, "/public/logo.png", host="localhost").status == 200
        assert request(port, uri, host="elsewhere.example").status == 0  # 444: closed
        assert request(port, "/_nginx_health", host="10.1.2.3").body == b"ok\n"
    finally:
        nginx.terminate()
        nginx.wait(timeout=10)
