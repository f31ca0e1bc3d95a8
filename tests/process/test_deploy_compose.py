"""Docker Compose (docker/compose.yaml): the compose-spec JSON schema vendored by
check-jsonschema, the services wired as the Dockerfile says, prometheus.yml by promtool."""

from __future__ import annotations

import json
import re
import shutil
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

from sidecar.devtools.demo import write_images
from tests.support.deploy import DOCKER, RULES, healthcheck_command, instruction, port_of, run, tool
from tests.support.paths import REPO


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((DOCKER / "compose.yaml").read_text())
    return loaded


def test_compose_file_fits_the_compose_spec(tmp_path: Path) -> None:
    check = (tool("check-jsonschema"), "--builtin-schema", "vendor.compose-spec")
    result = run(*check, str(DOCKER / "compose.yaml"))
    assert result.returncode == 0, result.stdout + result.stderr
    broken = tmp_path / "compose.yaml"
    broken.write_text((DOCKER / "compose.yaml").read_text().replace("read_only:", "readonly:"))
    assert run(*check, str(broken)).returncode != 0  # the schema does catch a wrong key


def test_compose_runs_the_image_as_the_dockerfile_says(compose: dict[str, Any]) -> None:
    sidecar = compose["services"]["sidecar"]
    assert sidecar["build"] == {"context": "..", "dockerfile": "docker/Dockerfile"}
    assert sidecar["read_only"] is True and "/tmp" in sidecar["tmpfs"]
    assert sidecar["cap_drop"] == ["ALL"]
    assert sidecar["healthcheck"]["test"] == ["CMD", *healthcheck_command()]
    (cmd,) = instruction("CMD")
    config_path = json.loads(cmd)[-1]
    # ./sidecar.toml unless SIDECAR_CONFIG names another (the "fleet" profile's).
    assert f"${{SIDECAR_CONFIG:-./sidecar.toml}}:{config_path}:ro" in sidecar["volumes"]
    (secret,) = sidecar["secrets"]
    config = tomllib.loads((DOCKER / "sidecar.toml").read_text())
    assert config["sources"][0]["keys"][0]["secret_file"] == f"/run/secrets/{secret['target']}"
    assert compose["secrets"][secret["source"]]["file"] == "./demo-books-token"


def test_compose_nginx_shares_the_sidecar_network_and_snippets(compose: dict[str, Any]) -> None:
    services = compose["services"]
    nginx = services["nginx"]
    assert nginx["network_mode"] == "service:sidecar"  # so 127.0.0.1:8080 is the sidecar
    conf_dir = Path(nginx["command"][nginx["command"].index("-c") + 1]).parent
    for snippet in ("signed-url-sidecar.conf", "signed-url-auth.conf"):
        assert f"../nginx/{snippet}:{conf_dir}/{snippet}:ro" in nginx["volumes"]
    # The auth cache's folder is writable (nginx creates only its last component).
    snippet = (REPO / "nginx" / "signed-url-sidecar.conf").read_text()
    (cache,) = re.findall(r"proxy_cache_path (\S+)", snippet)
    assert str(Path(cache).parent) in nginx["tmpfs"]
    listen = set(re.findall(r"listen (\d+)", (DOCKER / "nginx.conf").read_text()))
    assert [p.rpartition(":")[2] for p in services["sidecar"]["ports"]] == sorted(listen)
    published = [port for service in services.values() for port in service.get("ports", [])]
    assert all(port.startswith("127.0.0.1:") for port in published)


def test_compose_mounts_exist_and_wire_prometheus_and_grafana(compose: dict[str, Any]) -> None:
    services = compose["services"]
    sources = [volume.split(":")[0] for service in services.values()
               for volume in service.get("volumes", []) if volume.startswith(".")]  # fmt: skip
    grafana = {s for s in sources if s.startswith("../grafana/")}
    assert grafana == {"../grafana/alerts/signed-url-sidecar.rules.yaml",
                       "../grafana/provisioning", "../grafana/dashboards"}  # fmt: skip
    assert [s for s in sources if s not in grafana and not (DOCKER / s).exists()] == []
    rules_mount = next(v for v in services["prometheus"]["volumes"] if "rules.yaml" in v)
    prometheus = yaml.safe_load((DOCKER / "prometheus.yml").read_text())
    (rule_glob,) = prometheus["rule_files"]
    assert Path(rule_glob).parent == Path(rules_mount.split(":")[1]).parent
    (job,) = prometheus["scrape_configs"]
    metrics_port = port_of(tomllib.loads((DOCKER / "sidecar.toml").read_text())
                           ["server"]["metrics_listen"])  # fmt: skip
    assert job["static_configs"] == [{"targets": [f"sidecar:{metrics_port}"]}]
    assert set(re.findall(r'job="([^"]+)"', RULES.read_text())) == {job["job_name"]}


def test_prometheus_config_and_mounted_rules_pass_promtool(
    compose: dict[str, Any], tmp_path: Path
) -> None:
    promtool = shutil.which("promtool")
    assert promtool, "promtool is missing (Debian: apt-get install prometheus)"
    rules = tmp_path / "rules"
    rules.mkdir()
    shutil.copy(RULES, rules / RULES.name)
    config = (DOCKER / "prometheus.yml").read_text().replace("/etc/prometheus/rules", str(rules))
    (tmp_path / "prometheus.yml").write_text(config)
    result = run(promtool, "check", "config", str(tmp_path / "prometheus.yml"))
    assert result.returncode == 0, result.stdout + result.stderr
    assert RULES.name in result.stdout + result.stderr  # the rules were found and checked


def test_sample_images_are_the_demo_images(tmp_path: Path) -> None:
    expected = write_images(tmp_path)
    committed = {f"/{p.relative_to(DOCKER / 'images').as_posix()}": p.read_bytes()
                 for p in (DOCKER / "images").rglob("*") if p.is_file()}  # fmt: skip
    assert committed == expected
