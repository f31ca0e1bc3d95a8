"""The optional Valkey component (deploy/kubernetes/components/valkey/), rendered by
kustomize into the default overlay and an external-auth one, validated strictly against the
Kubernetes schemas: the overlay's config with the component's state.toml appended (as its
kustomization says) passes check-config and names its Service, only the sidecar pods reach
it on 6379, its pod is locked down, and its data survives a restart."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from tests.process.test_deploy_kubernetes import check_config, render_with_component
from tests.support.deploy import (
    K8S,
    one,
    rendered_sidecar_config,
    run,
    sidecar_config_files,
    tool,
    validate_manifest,
)

STATE = K8S / "components" / "valkey" / "state.toml"


def named(docs: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    (found,) = [d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name]
    return found


@pytest.mark.parametrize("overlay", ["sidecar-in-pod", "external-auth/ingress-nginx"])
def test_valkey_component_renders_validates_and_serves_the_sidecar_only(
    overlay: str, tmp_path: Path
) -> None:
    docs = render_with_component(tmp_path, overlay, "valkey")
    for doc in docs:
        validate_manifest(doc)
    plain = run(tool("kubectl"), "kustomize", str(K8S / "overlays" / overlay))
    assert plain.returncode == 0, plain.stderr
    before = rendered_sidecar_config(list(yaml.safe_load_all(plain.stdout)))
    main, files = sidecar_config_files(docs)
    assert files[main] == before[0]  # the component leaves the overlay's config alone
    files[main] += "\n" + STATE.read_text()  # what its kustomization says to do
    (tmp_path / "books-token").write_text("a-test-token\n")
    check_config(tmp_path, "valkey", main, files)
    config = tomllib.loads(files[main])
    assert config["server"]["proxy"] == before[1]["server"]["proxy"]
    sidecar_pods = one(docs, "Deployment")["spec"]["template"]["metadata"]["labels"]
    valkey = named(docs, "StatefulSet", "valkey")["spec"]
    valkey_pods = valkey["template"]["metadata"]["labels"]
    (server,) = valkey["template"]["spec"]["containers"]
    ports = {p["name"]: p["containerPort"] for p in server["ports"]}
    # [state] url -> the Service -> the container port 6379.
    url = urlsplit(config["state"]["url"])
    service = named(docs, "Service", "valkey")
    assert (url.scheme, url.hostname, url.port) == ("redis", service["metadata"]["name"], 6379)
    assert service["spec"]["selector"].items() <= valkey_pods.items()
    [port] = service["spec"]["ports"]
    assert port["port"] == url.port and ports[port["targetPort"]] == 6379
    assert valkey["serviceName"] == "valkey" and valkey["replicas"] == 1
    # Only the sidecar pods reach Valkey, on its port; Valkey opens nothing.
    guard = named(docs, "NetworkPolicy", "valkey")["spec"]
    assert guard["podSelector"]["matchLabels"].items() <= valkey_pods.items()
    assert guard["policyTypes"] == ["Ingress", "Egress"] and "egress" not in guard
    [rule] = guard["ingress"]
    assert [ports[p["port"]] for p in rule["ports"]] == [6379]
    assert rule["from"] == [{"podSelector": {"matchLabels": sidecar_pods}}]
    # The sidecar pods (no egress in the base) may reach Valkey and DNS, nothing more.
    egress = named(docs, "NetworkPolicy", "signed-images-valkey")["spec"]
    assert egress["podSelector"]["matchLabels"] == sidecar_pods
    assert egress["policyTypes"] == ["Egress"] and "ingress" not in egress
    to_valkey, to_dns = egress["egress"]
    assert to_valkey == {"ports": [{"port": 6379}],
                         "to": [{"podSelector": {"matchLabels": valkey_pods}}]}  # fmt: skip
    assert {p["port"] for p in to_dns["ports"]} == {53}
    assert to_dns["to"][0]["podSelector"] == {"matchLabels": {"k8s-app": "kube-dns"}}
    _locked_down_and_persistent(valkey)


def _locked_down_and_persistent(valkey: dict[str, Any]) -> None:
    pod = valkey["template"]["spec"]
    (server,) = pod["containers"]
    # A tag, as the base's nginx image (no digest): valkey/valkey:MAJOR.MINOR.
    assert re.fullmatch(r"valkey/valkey:\d+\.\d+", server["image"]), server["image"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["automountServiceAccountToken"] is False
    security = server["securityContext"]
    assert security["readOnlyRootFilesystem"] is True and security["runAsUser"] > 0
    assert security["allowPrivilegeEscalation"] is False
    assert security["capabilities"] == {"drop": ["ALL"]}
    for bound in ("requests", "limits"):
        assert set(server["resources"][bound]) == {"cpu", "memory"}
    # Revocations survive a restart: append-only, on a claimed volume mounted at --dir.
    args = server["args"]
    assert args[args.index("--appendonly") + 1] == "yes"
    [claim] = valkey["volumeClaimTemplates"]
    [mount] = server["volumeMounts"]
    assert mount["name"] == claim["metadata"]["name"]
    assert mount["mountPath"] == args[args.index("--dir") + 1]
