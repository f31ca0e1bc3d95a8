"""A throwaway copy of this machine to install into as root, as an operator would.

The copy is an overlay mount over ``/`` in private mount and PID namespaces: everything a
command writes (users in /etc/passwd, /opt, /etc/nginx, /var/lib/nginx) lands in the
sandbox's own upper folder and vanishes with it; the machine's own files are never touched.
Commands run chrooted into the copy. They share the machine's network (pip reaches the
package index) unless ``network=False``, which gives them a private loopback of their own, so
a server started there may take port 80 without meeting anything on the machine. Killing the
namespace's first process ends every process started inside.

PID 1 of the namespace stays outside the chroot, so systemctl sees a chroot and ignores
start/reload requests ("Running in chroot") while ``enable`` and ``daemon-reload`` are
offline no-ops: nothing is ever started by the steps themselves.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

READY_TIMEOUT = 10.0

_HOLDER = """
set -eu
mount -t overlay overlay -o "lowerdir=/,upperdir=$1/upper,workdir=$1/work" "$1/root"
mount -t proc proc "$1/root/proc"
mount --rbind /dev "$1/root/dev"
mount --rbind /sys "$1/root/sys"
mount -t tmpfs tmpfs "$1/root/run"
echo ready
exec sleep infinity
"""

_PRIVATE_NETWORK = 'ip link set lo up && exec "$@"'


def require_root_namespaces() -> None:
    """Skip (with the reason) where a sandbox cannot be made: not root, or no namespaces."""
    if os.geteuid() != 0:
        pytest.skip("installs as root into an overlay of /: run as root")
    probe = subprocess.run(["unshare", "--mount", "--pid", "--fork", "true"],
                           capture_output=True, check=False, timeout=10)  # fmt: skip
    if probe.returncode != 0:
        pytest.skip(f"no mount/PID namespaces here: {probe.stderr.decode().strip()}")


class Sandbox:
    """An overlay of ``/`` in its own namespaces; ``run`` executes a command inside."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        for name in ("upper", "work", "root"):
            (folder / name).mkdir(parents=True)
        self.upper = folder / "upper"
        self._holder = subprocess.Popen(
            ["unshare", "--mount", "--propagation", "private", "--pid", "--fork",
             "sh", "-c", _HOLDER, "holder", str(folder)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )  # fmt: skip
        assert self._holder.stdout is not None
        line = self._holder.stdout.readline()
        if line != b"ready\n":
            self._holder.kill()
            _, stderr = self._holder.communicate(timeout=READY_TIMEOUT)
            raise RuntimeError(f"the sandbox did not start: {stderr.decode()}")
        self.pid = self._first_process()

    def _first_process(self) -> int:
        """The host PID of the namespace's PID 1 (unshare's only child)."""
        deadline = time.monotonic() + READY_TIMEOUT
        children = Path(f"/proc/{self._holder.pid}/task/{self._holder.pid}/children")
        while time.monotonic() < deadline:
            found = children.read_text().split()
            if found:
                return int(found[0])
            time.sleep(0.01)
        raise RuntimeError("the sandbox's first process did not appear")

    def run(
        self, *command: str, network: bool = True, timeout: float = 600, **options: Any
    ) -> subprocess.CompletedProcess[str]:
        """Run ``command`` as root inside the sandbox, from the repository's folder."""
        # chroot inside the mount namespace: only there is the overlay mounted.
        cwd = options.pop("cwd", "/")
        enter = ["nsenter", f"--target={self.pid}", "--mount", "--pid", "chroot",
                 str(self.folder / "root"), "env", f"--chdir={cwd}"]  # fmt: skip
        if not network:
            enter += ["unshare", "--net", "sh", "-c", _PRIVATE_NETWORK, "private-network"]
        return subprocess.run([*enter, *command], capture_output=True, text=True,
                              timeout=timeout, check=False, **options)  # fmt: skip

    def close(self) -> None:
        """End every process inside; the mounts go with the namespace. Idempotent."""
        if self._holder.returncode is not None:
            return  # the PID may belong to another process by now: never signal it again
        # SIGKILL to PID 1 of the namespace ends every process in it.
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, signal.SIGKILL)
        self._holder.wait(timeout=READY_TIMEOUT)
        for stream in (self._holder.stdout, self._holder.stderr):
            if stream is not None:
                stream.close()
