"""The compose stack's optional Valkey (docker/compose.yaml, profile "fleet"): off by
default, locked down and unpublished, persistent, and the fleet config the sidecar then
reads (docker/sidecar-fleet.toml) is docker/sidecar.toml plus a [state] naming it, and
passes check-config."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

from tests.process.test_deploy_kubernetes import check_config
from tests.support.deploy import DOCKER

FLEET = DOCKER / "sidecar-fleet.toml"


def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((DOCKER / "compose.yaml").read_text())
    return loaded


def test_valkey_runs_only_in_the_fleet_profile_locked_down_and_persistent() -> None:
    services = compose()["services"]
    valkey = services["valkey"]
    assert valkey["profiles"] == ["fleet"]  # `docker compose up` alone leaves it out
    assert [name for name, s in services.items() if "profiles" in s] == ["valkey"]
    assert all("valkey" not in s.get("depends_on", {}) for s in services.values())
    assert re.fullmatch(r"valkey/valkey:\d+\.\d+", valkey["image"])  # a tag, as the others
    assert "ports" not in valkey  # only the stack's containers reach it
    assert valkey["read_only"] is True and valkey["cap_drop"] == ["ALL"]
    assert valkey["security_opt"] == ["no-new-privileges:true"]
    assert not valkey["user"].startswith("0")
    command = valkey["command"]
    assert command[command.index("--appendonly") + 1] == "yes"
    [volume] = valkey["volumes"]
    name, mount = volume.split(":")
    assert mount == command[command.index("--dir") + 1] and name in compose()["volumes"]


def test_the_fleet_config_is_the_compose_config_plus_state(tmp_path: Path) -> None:
    base = (DOCKER / "sidecar.toml").read_text()
    fleet = FLEET.read_text()
    assert fleet.startswith(base)  # the two never drift
    added = tomllib.loads(fleet[len(base) :])
    url = urlsplit(added["state"]["url"])
    assert set(added) == {"state"}
    assert (url.scheme, url.hostname, url.port) == ("redis", "valkey", 6379)
    mount = compose()["services"]["sidecar"]["volumes"][0]
    assert mount.startswith("${SIDECAR_CONFIG:-./sidecar.toml}:")  # SIDECAR_CONFIG selects it
    assert f"SIDECAR_CONFIG=./{FLEET.name} " in (DOCKER / "compose.yaml").read_text()
    (tmp_path / "books-token").write_text("a-test-token\n")
    check_config(tmp_path, "fleet", FLEET.name, {FLEET.name: fleet})
