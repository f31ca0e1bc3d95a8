"""The external-auth overlays (ingress-nginx, Traefik, Envoy Gateway): each controller calls
the sidecar's Service, alone in its pod, and ingress-nginx's auth cache key never joins
two requests."""

from __future__ import annotations

import re
import urllib.parse
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sidecar.policy.proxies import VERIFY_PATH
from tests.support.deploy import OVERLAYS, Renders, one, render_overlays, service_url

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
