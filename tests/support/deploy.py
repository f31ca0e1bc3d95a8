"""What the ``test_deploy_*`` modules share: where the deployment files are, the tools of the
test venv, the Kubernetes renders and their lookups, and the Dockerfile's instructions.

The deployment files (docker/, deploy/kubernetes/) are checked with real tools, no Docker
engine. Not run here: ``docker build``/``run``/``compose`` (no engine), and anything needing
a cluster (apply, probes, the HPA, the controllers calling the sidecar).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any, TypeAlias

import jsonschema
import kubernetes_validate
import yaml

from sidecar.policy.proxies import VERIFY_PATH
from tests.support import istio
from tests.support.paths import REPO

DOCKER = REPO / "docker"
K8S = REPO / "deploy" / "kubernetes"
BIN = Path(sys.executable).parent  # the test venv: kubectl, check-jsonschema, sidecar
RULES = REPO / "grafana" / "alerts" / "signed-url-sidecar.rules.yaml"
OVERLAYS = {  # overlay -> the [server] proxy profile its sidecar.toml must choose
    "sidecar-in-pod": "nginx",
    "external-auth/ingress-nginx": "ingress-nginx",
    "external-auth/traefik": "traefik",
    "external-auth/envoy-gateway": "envoy",
    "external-auth/istio": "envoy",  # Istio's ext_authz is Envoy's
}
K8S_VERSIONS = ("1.29", kubernetes_validate.utils.latest_version())
CRD_SCHEMAS = yaml.safe_load((REPO / "tests" / "schemas" / "custom-resources.yaml").read_text())
ISTIO_SCHEMAS = istio.crd_schemas(CRD_SCHEMAS["$defs"])
KEYS_SECRET = "signed-url-sidecar-keys"

Manifest: TypeAlias = dict[str, Any]
Renders: TypeAlias = dict[str, list[Manifest]]  # overlay -> the objects kustomize renders


def tool(name: str) -> str:
    path = BIN / name
    assert path.exists(), f"{name} is missing: pip install -e '.[test]'"
    return str(path)


def run(*command: str, **options: Any) -> subprocess.CompletedProcess[str]:
    options.setdefault("timeout", 120)
    return subprocess.run(command, check=False, capture_output=True, text=True, **options)


# --- Kubernetes ------------------------------------------------------------------------------


def validate_manifest(doc: dict[str, Any]) -> None:
    """Raise when ``doc`` does not fit its schema (Kubernetes' own, Istio's CRD, or ours for
    another custom resource)."""
    if (doc["apiVersion"], doc["kind"]) in ISTIO_SCHEMAS:
        jsonschema.Draft202012Validator(ISTIO_SCHEMAS[doc["apiVersion"], doc["kind"]]).validate(doc)
        istio.cel_rules(doc)
        return
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


def render_overlays() -> Renders:
    """Every overlay, as kustomize (kubectl's) renders it."""
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


def volume_source(
    deployment: dict[str, Any], mount_path: str, container_name: str
) -> dict[str, Any]:
    mount = next(m for m in container(deployment, container_name)["volumeMounts"]
                 if m["mountPath"] == mount_path)  # fmt: skip
    volumes = deployment["spec"]["template"]["spec"]["volumes"]
    return next(v for v in volumes if v["name"] == mount["name"])


def volume_files(docs: list[dict[str, Any]], volume: dict[str, Any]) -> dict[str, str]:
    """The files a configMap or projected volume shows, by their path inside the mount."""
    sources = volume["projected"]["sources"] if "projected" in volume else [volume]
    files = {}
    for source in sources:
        reference = source["configMap"]
        data = next(d for d in docs if d["kind"] == "ConfigMap"
                    and d["metadata"]["name"] == reference["name"])["data"]  # fmt: skip
        items = reference.get("items") or [{"key": key, "path": key} for key in data]
        files.update({item["path"]: data[item["key"]] for item in items})
    return files


def sidecar_config_files(docs: list[dict[str, Any]]) -> tuple[str, dict[str, str]]:
    """The sidecar's config folder as rendered: the main file's name, and every file."""
    deployment = one(docs, "Deployment")
    args = container(deployment, "sidecar")["args"]
    config_path = Path(args[args.index("-c") + 1])
    volume = volume_source(deployment, str(config_path.parent), "sidecar")
    return config_path.name, volume_files(docs, volume)


def rendered_sidecar_config(docs: list[dict[str, Any]]) -> tuple[str, dict[str, Any]]:
    """The rendered sidecar.toml (text and parsed) that the sidecar container is given."""
    main, files = sidecar_config_files(docs)
    return files[main], tomllib.loads(files[main])


def port_of(address: str) -> int:
    return int(address.rpartition(":")[2])


def service_url(docs: list[dict[str, Any]], namespace: str) -> str:
    """The URL of the rendered Service's verify port: what a controller must call."""
    service = one(docs, "Service")
    (port,) = [p["port"] for p in service["spec"]["ports"] if p["targetPort"] == "verify"]
    host = f"{service['metadata']['name']}.{namespace}.svc.cluster.local"
    return f"http://{host}:{port}{VERIFY_PATH}"


# --- the Dockerfile ----------------------------------------------------------------------------


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
    command: list[str] = json.loads(healthcheck.partition(" CMD ")[2])
    return command
