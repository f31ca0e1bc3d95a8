"""Run inside the VM sandbox (tests/support/vm_sandbox.py), after deploy/README.md's steps,
on a private loopback, with Debian's python3 (standard library only).

It starts what the steps installed the way systemd would: the unit's ExecStartPre and
ExecStart as the unit's User/Group with no new privileges, and nginx with its installed
/etc/nginx/nginx.conf (port 80: free on this private loopback). Then it asks nginx for a
signed, a tampered and an unsigned image, runs the unit's ExecReload, and prints what it saw
as one JSON object for the test to judge. Usage: python3 vm_probe.py UNIT_FILE IMAGE_PATH
"""

from __future__ import annotations

import http.client
import json
import os
import shlex
import signal
import subprocess
import sys
import time
import urllib.parse
from pathlib import Path
from typing import Any

DEADLINE = 30.0
HOST = "image.example.com"  # nginx/nginx.conf's server_name and the config's hosts


def unit_settings(path: Path) -> dict[str, str]:
    """The [Service] settings of a unit file (a later assignment wins)."""
    settings: dict[str, str] = {}
    section = ""
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if line.startswith("["):
            section = line
        elif section == "[Service]" and "=" in line and not line.startswith("#"):
            name, _, value = line.partition("=")
            settings[name] = value
    return settings


def as_unit_user(settings: dict[str, str], command: str) -> list[str]:
    """``command`` run as the unit's User and Group, its groups, and no new privileges."""
    return ["setpriv", f"--reuid={settings['User']}", f"--regid={settings['Group']}",
            "--init-groups", "--no-new-privs", *shlex.split(command)]  # fmt: skip


def get(port: int, path: str, host: str = HOST) -> tuple[int, bytes, dict[str, str]]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        connection.request("GET", path, headers={"Host": host})
        response = connection.getresponse()
        return response.status, response.read(), dict(response.getheaders())
    finally:
        connection.close()


def wait_for(port: int, path: str, host: str = HOST) -> None:
    deadline = time.monotonic() + DEADLINE
    while True:
        try:
            get(port, path, host)
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def closed_without_answer(path: str, host: str) -> bool:
    """nginx's ``return 444``: the connection closes with no response at all."""
    try:
        get(80, path, host)
    except http.client.RemoteDisconnected:
        return True
    return False


def reloads(metrics_port: int) -> float:
    """signed_url_config_reloads_total{result="success"}, summed over the workers."""
    _, body, _ = get(metrics_port, "/metrics", "127.0.0.1")
    for line in body.decode().splitlines():
        if line.startswith('signed_url_config_reloads_total{result="success"}'):
            return float(line.split()[-1])
    return 0.0


def wait_for_reload(metrics_port: int, before: float) -> float:
    deadline = time.monotonic() + DEADLINE
    while (after := reloads(metrics_port)) <= before and time.monotonic() < deadline:
        time.sleep(0.05)
    return after


def uid_of(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    (line,) = [line for line in status.splitlines() if line.startswith("Uid:")]
    return int(line.split()[2])  # the effective uid


def probe(unit: Path, image: str) -> dict[str, Any]:
    settings = unit_settings(unit)
    config = shlex.split(settings["ExecStart"])[-1]
    seen: dict[str, Any] = {}
    pre = subprocess.run(as_unit_user(settings, settings["ExecStartPre"]),
                         capture_output=True, text=True, check=False)  # fmt: skip
    seen["exec_start_pre"] = [pre.returncode, pre.stdout + pre.stderr]
    # Their logs go to stderr: stdout carries only the JSON answer.
    sidecar = subprocess.Popen(as_unit_user(settings, settings["ExecStart"]), stdout=sys.stderr)
    nginx = subprocess.Popen(["nginx", "-g", "daemon off;"], stdout=sys.stderr)
    try:
        wait_for(8080, "/readyz", "127.0.0.1")
        wait_for(80, "/")
        seen["sidecar_uid"] = uid_of(sidecar.pid)
        sign = subprocess.run(
            as_unit_user(settings, f"/opt/signed-url-sidecar/bin/sidecar sign -c {config} "
                         f"--source books --expires-in 600 http://{HOST}{image}?w=400"),
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        assert sign.returncode == 0, sign.stderr
        url = urllib.parse.urlsplit(sign.stdout.strip())
        signed = f"{url.path}?{url.query}"
        status, body, headers = get(80, signed)
        seen["signed"] = [status, body.hex(), "X-Request-ID" in headers]
        seen["tampered"] = get(80, signed.replace("w=400", "w=401"))[0]
        seen["unsigned"] = get(80, image)[0]
        seen["other_host"] = closed_without_answer(signed, "elsewhere.example")
        before = reloads(9108)
        reload = settings["ExecReload"].replace("$MAINPID", str(sidecar.pid))
        seen["exec_reload"] = subprocess.run(shlex.split(reload), check=False).returncode
        seen["reloads"] = [before, wait_for_reload(9108, before)]
        seen["signed_after_reload"] = get(80, signed)[0]
    finally:
        for process in (nginx, sidecar):
            process.send_signal(signal.SIGTERM)
        seen["sidecar_exit"] = sidecar.wait(timeout=DEADLINE)
        nginx.wait(timeout=DEADLINE)
    return seen


if __name__ == "__main__":
    os.umask(0o022)
    print(json.dumps(probe(Path(sys.argv[1]), sys.argv[2])))
