"""The VM install (deploy/README.md, nginx/, deploy/systemd/), as an operator runs it on
Debian, as root, inside a throwaway overlay of this machine (tests/support/vm_sandbox.py):
nothing is installed on the machine itself, no user is left behind, and the servers the last
test starts listen on a private loopback.

- the shipped nginx files pass ``nginx -t`` on Debian's nginx byte for byte, in both layouts
  the README describes, where the former /var/cache/nginx path does not;
- the systemd unit passes ``systemd-analyze verify`` and scores "OK" in
  ``systemd-analyze security``;
- the README's shell blocks, run as written, install a sidecar that its unit's commands
  start as the unit's user, and nginx serves a signed image through it.
"""

from __future__ import annotations

import base64
import json
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from sidecar.devtools.demo import write_images
from tests.support.paths import REPO
from tests.support.vm_sandbox import Sandbox, require_root_namespaces

pytestmark = pytest.mark.installs  # its own wheel and venv: the compiled pass only

SYSTEMD = REPO / "deploy" / "systemd"
UNIT = SYSTEMD / "signed-url-sidecar.service"
NGINX = REPO / "nginx"
README = REPO / "deploy" / "README.md"
SECURITY_OK = 2.0  # systemd-analyze security: below 2.0 is "OK", the best band but one


@pytest.fixture
def sandbox(tmp_path: Path) -> Iterator[Sandbox]:
    require_root_namespaces()
    box = Sandbox(tmp_path / "sandbox")
    try:
        yield box
    finally:
        box.close()


def ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout + result.stderr


def write(box: Sandbox, path: str, text: str) -> None:
    ok(box.run("sh", "-c", 'mkdir -p "$(dirname "$1")" && cat > "$1"', "write", path, input=text))


def write_bytes(box: Sandbox, path: str, data: bytes) -> None:
    command = 'mkdir -p "$(dirname "$1")" && base64 -d > "$1"'
    ok(box.run("sh", "-c", command, "write", path, input=base64.b64encode(data).decode()))


def unit_settings(text: str) -> dict[str, list[str]]:
    settings: dict[str, list[str]] = {}
    for line in text.splitlines():
        if "=" in line and not line.startswith(("#", "[")):
            name, _, value = line.partition("=")
            settings.setdefault(name, []).append(value)
    return settings


# --- nginx -t -------------------------------------------------------------------------------


def test_shipped_nginx_files_pass_nginx_t_on_debian(sandbox: Sandbox) -> None:
    """The README's layout: nginx.conf and both snippets in /etc/nginx/, unmodified."""
    shipped = [str(NGINX / name) for name in
               ("nginx.conf", "signed-url-sidecar.conf", "signed-url-auth.conf")]  # fmt: skip
    ok(sandbox.run("install", "-m", "0644", *shipped, "/etc/nginx/"))
    output = ok(sandbox.run("nginx", "-t"))
    assert "/etc/nginx/nginx.conf test is successful" in output
    # nginx made the auth cache folder itself, for its worker user.
    cache = ok(sandbox.run("stat", "-c", "%U %a", "/var/lib/nginx/signed-url-auth"))
    assert cache.split() == ["www-data", "700"]
    sandbox.close()
    for name in ("nginx.conf", "signed-url-sidecar.conf", "signed-url-auth.conf"):
        installed = sandbox.upper / "etc" / "nginx" / name
        assert installed.read_bytes() == (NGINX / name).read_bytes(), name


def test_snippets_pass_nginx_t_in_debians_own_layout(sandbox: Sandbox) -> None:
    """Debian's nginx.conf kept: the http snippet in conf.d/, the server one in snippets/,
    a site including it. The former /var/cache/nginx path fails here, as it did for users."""
    ok(sandbox.run("install", "-m", "0644", str(NGINX / "signed-url-sidecar.conf"),
                   "/etc/nginx/conf.d/"))  # fmt: skip
    ok(sandbox.run("install", "-m", "0644", str(NGINX / "signed-url-auth.conf"),
                   "/etc/nginx/snippets/"))  # fmt: skip
    site = ("server {\n    listen 8081;\n    server_name image.example.com;\n"
            "    root /srv/images;\n    include snippets/signed-url-auth.conf;\n}\n")  # fmt: skip
    write(sandbox, "/etc/nginx/sites-enabled/signed-images", site)
    ok(sandbox.run("nginx", "-t"))
    old = (
        (NGINX / "signed-url-sidecar.conf")
        .read_text()
        .replace("/var/lib/nginx/", "/var/cache/nginx/")
    )
    write(sandbox, "/etc/nginx/conf.d/signed-url-sidecar.conf", old)
    failed = sandbox.run("nginx", "-t")
    assert failed.returncode != 0
    assert (
        '"/var/cache/nginx/signed-url-auth" failed (2: No such file or directory)' in failed.stderr
    )


# --- the systemd unit -------------------------------------------------------------------------


def test_unit_is_hardened_and_reloads_with_sighup() -> None:
    unit = unit_settings(UNIT.read_text())
    assert unit["User"] == unit["Group"] == ["sidecar"]
    sysusers = (SYSTEMD / "signed-url-sidecar.sysusers.conf").read_text()
    assert re.search(r"^u\s+sidecar\s", sysusers, re.MULTILINE)
    tmpfiles = (SYSTEMD / "signed-url-sidecar.tmpfiles.conf").read_text()
    assert re.search(r"^d\s+/etc/signed-url-sidecar\s+0750\s+root\s+sidecar\s", tmpfiles,
                     re.MULTILINE)  # fmt: skip
    config = "-c /etc/signed-url-sidecar/sidecar.toml"
    assert unit["ExecStartPre"] == [f"/opt/signed-url-sidecar/bin/sidecar check-config {config}"]
    assert unit["ExecStart"] == [f"/opt/signed-url-sidecar/bin/sidecar serve {config}"]
    assert unit["ExecReload"] == ["/bin/kill -HUP $MAINPID"]
    for name, value in {"NoNewPrivileges": "yes", "ProtectSystem": "strict",
                        "PrivateTmp": "yes", "CapabilityBoundingSet": "",
                        "RestrictAddressFamilies": "AF_INET AF_INET6 AF_UNIX"}.items():  # fmt: skip
        assert unit[name] == [value], name
    assert unit["SystemCallFilter"][0] == "@system-service"


def install_unit(box: Sandbox, text: str) -> None:
    """The unit where the README puts it, and a real ``sidecar`` where it points (the test
    venv's, linked into /opt, so that verify's executable checks have something to find)."""
    ok(box.run("ln", "-s", str(Path(REPO / ".venv")), "/opt/signed-url-sidecar"))
    write(box, "/etc/systemd/system/signed-url-sidecar.service", text)


def test_unit_passes_systemd_analyze_verify(sandbox: Sandbox) -> None:
    install_unit(sandbox, UNIT.read_text())
    verify = ("systemd-analyze", "verify", "/etc/systemd/system/signed-url-sidecar.service")
    result = sandbox.run(*verify)
    assert (result.returncode, result.stdout + result.stderr) == (0, "")
    # verify does catch a mistake: a misspelt setting and a missing program.
    broken = UNIT.read_text().replace("ProtectSystem=", "ProtectSytem=")
    broken = broken.replace("ExecReload=/bin/kill", "ExecReload=/bin/nokill")
    write(sandbox, "/etc/systemd/system/signed-url-sidecar.service", broken)
    result = sandbox.run(*verify)
    assert "Unknown key 'ProtectSytem' in section [Service]" in result.stderr
    assert result.returncode != 0 and "/bin/nokill is not executable" in result.stderr


def test_unit_exposure_is_ok(sandbox: Sandbox) -> None:
    install_unit(sandbox, UNIT.read_text())
    result = sandbox.run("systemd-analyze", "security", "--offline=yes",
                         "signed-url-sidecar.service")  # fmt: skip
    found = re.search(r"Overall exposure level for signed-url-sidecar.service: (\d+\.\d+) (\w+)",
                      ok(result))  # fmt: skip
    assert found is not None, result.stdout
    assert float(found.group(1)) < SECURITY_OK and found.group(2) == "OK", found.group(0)
    # The README states the score operators will see.
    assert f"scores {found.group(1)}" in README.read_text()


# --- the README's steps -------------------------------------------------------------------------

# sudo as root, without the sudo package: "sudo VAR=x cmd" and "sudo -u user cmd".
FAKE_SUDO = """
sudo() {
    if [ "$1" = "-u" ]; then
        user=$2; shift 2
        setpriv --reuid="$user" --regid="$user" --init-groups -- "$@"
    else
        env "$@"
    fi
}
"""


def readme_vm_blocks() -> list[str]:
    section = README.read_text().split("## On a VM beside nginx", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```sh\n(.*?)```", section, re.DOTALL)


def apt_packages(blocks: list[str]) -> list[str]:
    """The packages of the README's apt-get line: the one step not run (see below)."""
    (line,) = [line for block in blocks for line in block.splitlines() if "apt-get install" in line]
    return line.split("#")[0].split("apt-get install", 1)[1].split()


@pytest.mark.e2e
def test_readme_vm_steps_install_a_working_service(sandbox: Sandbox, tmp_path: Path) -> None:
    blocks = readme_vm_blocks()
    assert len(blocks) >= 5
    # apt-get is checked, not run: upgrading a package here could start its service on the
    # machine's network. The packages must be installed, as scripts/setup does.
    for package in apt_packages(blocks):
        status = subprocess.run(["dpkg-query", "-W", "-f=${Status}", package],
                                capture_output=True, text=True, check=False)  # fmt: skip
        assert status.stdout == "install ok installed", package
    steps = "\n".join(b for b in blocks if "apt-get install" not in b)
    script = f"set -euxo pipefail\n{FAKE_SUDO}\n{steps}"
    ok(sandbox.run("bash", "-c", script, cwd=str(REPO), timeout=900))

    image = write_images(tmp_path)["/books/database-internals.png"]
    write_bytes(sandbox, "/srv/images/books/database-internals.png", image)
    result = sandbox.run("/usr/bin/python3", str(REPO / "tests" / "support" / "vm_probe.py"),
                         "/etc/systemd/system/signed-url-sidecar.service",
                         "/books/database-internals.png", network=False, timeout=120)  # fmt: skip
    ok(result)
    seen = json.loads(result.stdout.splitlines()[-1])
    assert seen["exec_start_pre"][0] == 0, seen["exec_start_pre"]
    sidecar_uid = ok(sandbox.run("id", "-u", "sidecar")).strip()
    assert seen["sidecar_uid"] == int(sidecar_uid) > 0
    assert seen["signed"] == [200, image.hex(), True]
    assert (seen["tampered"], seen["unsigned"]) == (401, 401)
    assert seen["other_host"] is True
    assert seen["exec_reload"] == 0
    before, after = seen["reloads"]
    assert after > before  # SIGHUP reached the workers and each reloaded
    assert seen["signed_after_reload"] == 200
    assert seen["sidecar_exit"] == 0  # SIGTERM stops it cleanly
    modes = ok(sandbox.run("stat", "-c", "%n %U %G %a", "/etc/signed-url-sidecar",
                           "/etc/signed-url-sidecar/sidecar.toml",
                           "/etc/signed-url-sidecar/books-token"))  # fmt: skip
    assert modes.splitlines() == [
        "/etc/signed-url-sidecar root sidecar 750",
        "/etc/signed-url-sidecar/sidecar.toml root sidecar 440",
        "/etc/signed-url-sidecar/books-token root sidecar 440",
    ]
    sandbox.close()
    wants = sandbox.upper / "etc/systemd/system/multi-user.target.wants/signed-url-sidecar.service"
    assert wants.is_symlink()  # systemctl enable did its (offline) part
    assert "sidecar:" in (sandbox.upper / "etc" / "passwd").read_text()
    assert "sidecar:" not in Path("/etc/passwd").read_text()  # the machine has no such user
