"""The external-auth overlays (ingress-nginx, Traefik, Envoy Gateway, Istio): each calls
the sidecar's Service, alone in its pod, and ingress-nginx's auth cache key never joins
two requests."""

from __future__ import annotations

import copy
import re
import tomllib
import urllib.parse
from typing import Any

import jsonschema
import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from sidecar.policy.proxies import VERIFY_PATH
from tests.support.deploy import (
    K8S,
    OVERLAYS,
    Renders,
    one,
    render_overlays,
    service_url,
    sidecar_config_files,
    validate_manifest,
)
from tests.support.istio import validate_mesh_config

# ingress-nginx's annotation validation for auth-cache-key (parser.NGINXVariable).
INGRESS_NGINX_VARIABLE = re.compile(r"^[A-Za-z0-9\-\_\$\{\}]*$")


@pytest.fixture(scope="module")
def rendered() -> Renders:
    return render_overlays()


def namespace_of(docs: list[dict[str, Any]]) -> str:
    """The namespace the overlay deploys the sidecar's Service into."""
    namespace: str = one(docs, "Service")["metadata"]["namespace"]
    return namespace


@pytest.mark.parametrize("overlay", [o for o in OVERLAYS if o.startswith("external-auth/")])
def test_external_auth_runs_the_sidecar_alone(rendered: Renders, overlay: str) -> None:
    docs = rendered[overlay]
    pod = one(docs, "Deployment")["spec"]["template"]["spec"]
    assert [c["name"] for c in pod["containers"]] == ["sidecar"]
    assert {v["name"] for v in pod["volumes"]} == {"sidecar-config", "sidecar-keys", "sidecar-tmp"}
    assert not [d for d in docs if d["kind"] == "ConfigMap" and "nginx.conf" in d["data"]]
    assert one(docs, "Service")["spec"]["ports"] == [
        {"name": "verify", "port": 8080, "targetPort": "verify"}
    ]


def test_no_overlay_uses_snippet_annotations(rendered: Renders) -> None:
    annotations = [name for docs in rendered.values() for doc in docs
                   for name in doc["metadata"].get("annotations", {})]  # fmt: skip
    assert annotations  # the ingress examples do carry annotations
    assert not [name for name in annotations if name.endswith("snippet")]


def ingress_nginx_annotations(rendered: Renders) -> dict[str, str]:
    ingress = one(rendered["external-auth/ingress-nginx"], "Ingress")
    prefix = "nginx.ingress.kubernetes.io/"
    annotations = ingress["metadata"]["annotations"]
    return {k.removeprefix(prefix): v for k, v in annotations.items() if k.startswith(prefix)}


def test_ingress_nginx_calls_the_sidecar_and_caches_by_full_uri(rendered: Renders) -> None:
    docs = rendered["external-auth/ingress-nginx"]
    annotations = ingress_nginx_annotations(rendered)
    assert annotations["auth-url"] == service_url(docs, namespace_of(docs))
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
    rendered: Renders, method: str, scheme: str, host: str, uri: str
) -> None:
    """The key decodes back to (method, scheme, host, URI): no two requests share one."""
    template = ingress_nginx_annotations(rendered)["auth-cache-key"]
    values = {"request_method": method, "scheme": scheme, "host": host, "request_uri": uri}
    key = re.sub(r"\$\{(\w+)\}", lambda m: values[m.group(1)], template)
    decoded = re.fullmatch(r"([A-Z_-]+)(https|http)-([^/]*)(/.*)", key, re.DOTALL)
    assert decoded is not None and decoded.groups() == (method, scheme, host, uri)


def test_traefik_forward_auth_calls_the_sidecar(rendered: Renders) -> None:
    docs = rendered["external-auth/traefik"]
    middleware = one(docs, "Middleware")
    forward = middleware["spec"]["forwardAuth"]
    assert forward["address"] == service_url(docs, namespace_of(docs))
    assert forward["trustForwardHeader"] is False
    reference = f"{namespace_of(docs)}-{middleware['metadata']['name']}@kubernetescrd"
    annotations = one(docs, "Ingress")["metadata"]["annotations"]
    assert annotations["traefik.ingress.kubernetes.io/router.middlewares"] == reference


def test_envoy_gateway_ext_auth_calls_the_sidecar(rendered: Renders) -> None:
    docs = rendered["external-auth/envoy-gateway"]
    policy = one(docs, "SecurityPolicy")["spec"]
    route = one(docs, "HTTPRoute")
    assert policy["targetRefs"] == [{"group": "gateway.networking.k8s.io", "kind": "HTTPRoute",
                                     "name": route["metadata"]["name"]}]  # fmt: skip
    ext_auth = policy["extAuth"]
    assert ext_auth["failOpen"] is False
    (backend,) = ext_auth["http"]["backendRefs"]
    url = urllib.parse.urlsplit(service_url(docs, namespace_of(docs)))
    assert url.hostname is not None
    assert (backend["name"], backend["port"]) == (url.hostname.split(".")[0], url.port)
    # Envoy prefixes the original path with this: the envoy profile strips VERIFY_PATH.
    assert ext_auth["http"]["path"] == VERIFY_PATH
    assert "x-forwarded-for" in ext_auth["headersToExtAuth"]  # the client address


# --- Istio: the mesh's extension provider and the workload's AuthorizationPolicy ------------

ISTIO = "external-auth/istio"


def mesh_config() -> dict[str, Any]:
    fragment: dict[str, Any] = yaml.safe_load(
        (K8S / "overlays" / ISTIO / "mesh-config.yaml").read_text()
    )
    return fragment


def test_istio_mesh_provider_calls_the_sidecar(rendered: Renders) -> None:
    fragment = mesh_config()
    validate_mesh_config(fragment)
    (provider,) = fragment["meshConfig"]["extensionProviders"]
    http = provider["envoyExtAuthzHttp"]
    docs = rendered[ISTIO]
    url = urllib.parse.urlsplit(service_url(docs, namespace_of(docs)))
    assert (http["service"], http["port"]) == (url.hostname, url.port)
    # Envoy prefixes the original path with this: the envoy profile strips VERIFY_PATH.
    assert http["pathPrefix"] == VERIFY_PATH
    assert http["failOpen"] is False and http["timeout"] == "1s"  # Istio's default: 600 s
    assert "x-forwarded-for" in http["includeRequestHeadersInCheck"]  # the client address
    assert http["headersToUpstreamOnAllow"] == ["x-signature-result"]
    # Listing it keeps the sidecar's other headers (source, key, cache) from the client.
    assert http["headersToDownstreamOnDeny"] == ["x-signature-result"]


def test_istio_policy_sends_the_image_workload_to_the_provider(rendered: Renders) -> None:
    docs = rendered[ISTIO]
    policy = one(docs, "AuthorizationPolicy")["spec"]
    (provider,) = mesh_config()["meshConfig"]["extensionProviders"]
    assert (policy["action"], policy["provider"]) == ("CUSTOM", {"name": provider["name"]})
    assert policy["rules"] == [{}]  # every request of the workload
    # The workload it selects is the one the NetworkPolicy lets call /verify.
    network = one(docs, "NetworkPolicy")["spec"]["ingress"]
    callers = [peer for rule in network if rule["ports"] == [{"port": "verify"}]
               for peer in rule["from"]]  # fmt: skip
    assert [peer["podSelector"]["matchLabels"] for peer in callers] == [
        policy["selector"]["matchLabels"]
    ]


def test_istio_sources_bind_no_host(rendered: Renders) -> None:
    # The workload's proxy asks with the Host its caller chose: no source may route on it.
    _, files = sidecar_config_files(rendered[ISTIO])
    sources = [source for name, text in files.items() if name.startswith("sources.d/")
               for source in tomllib.loads(text).get("sources", [])]  # fmt: skip
    assert sources and not [source for source in sources if "hosts" in source]


def test_istio_validators_reject_broken_files(rendered: Renders) -> None:
    """Istio's CRD, the CEL rules checked beside it, and the mesh config's schema each fail
    on a one-field mistake, so their passing means something."""
    policy = one(rendered[ISTIO], "AuthorizationPolicy")
    broken_policies = [copy.deepcopy(policy) for _ in range(4)]
    broken_policies[0]["spec"]["actoin"] = broken_policies[0]["spec"].pop("action")
    broken_policies[1]["spec"]["action"] = "EXTERNAL"
    broken_policies[2]["spec"]["provider"]["names"] = "signed-url-sidecar"
    broken_policies[3]["spec"]["targetRefs"] = [{"kind": "Service", "name": "images"}]
    for broken in broken_policies:
        with pytest.raises(jsonschema.ValidationError):
            validate_manifest(broken)
    for field, value in (("pathPrefix", "verify"), ("port", 0), ("timeout", "1 s"),
                         ("includeRequestHeadersInCheck", ["*"]), ("failopen", False)):  # fmt: skip
        broken_mesh = mesh_config()
        broken_mesh["meshConfig"]["extensionProviders"][0]["envoyExtAuthzHttp"][field] = value
        with pytest.raises(jsonschema.ValidationError):
            validate_mesh_config(broken_mesh)
