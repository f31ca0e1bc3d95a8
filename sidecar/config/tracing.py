"""``[tracing]`` (docs/tracing.md): where OpenTelemetry spans go, and how many are kept.

Off without the table. The endpoint is an OTLP/HTTP collector's base URL, as
``OTEL_EXPORTER_OTLP_ENDPOINT`` names it: spans are posted to its ``/v1/traces``.
"""

from __future__ import annotations

from importlib.util import find_spec
from urllib.parse import urlsplit

from sidecar.config.fields import Problems, Table
from sidecar.policy.settings import TracingSettings

_FIELDS = {"otlp_endpoint", "service_name", "sample_ratio"}
_SERVICE_NAME = "signed-url-sidecar"
_ENDPOINT_RULE = "must be an http:// or https:// URL with a host, no query, no password"
_EXTRA = "needs the tracing extra: pip install 'signed-url-sidecar[tracing]'"
# What runtime/tracing.py imports: looked up (not imported) so check-config says so too.
_NEEDED = ("opentelemetry.sdk", "opentelemetry.exporter.otlp.proto.http")


def parse_tracing(raw: dict[str, object] | None, problems: Problems) -> TracingSettings | None:
    if raw is None:
        return None
    table = Table(raw, "tracing", problems)
    table.check_names(_FIELDS)
    if not _installed():
        problems.add("tracing", _EXTRA)
    endpoint = table.require("otlp_endpoint", str)
    service = table.get("service_name", str, _SERVICE_NAME)
    assert service is not None  # the default is given
    table.check("service_name", 0 < len(service) <= 128, "must be 1 to 128 characters")
    ratio = _ratio(table)
    if endpoint is None or not table.check("otlp_endpoint", _endpoint_ok(endpoint), _ENDPOINT_RULE):
        return None
    # The base URL, as OTEL_EXPORTER_OTLP_ENDPOINT: the signal's path would be doubled.
    base = not endpoint.rstrip("/").endswith("/v1/traces")
    if not table.check("otlp_endpoint", base, "is the collector's base URL: leave out /v1/traces"):
        return None
    return TracingSettings(endpoint.rstrip("/") + "/v1/traces", service, ratio)


def _ratio(table: Table) -> float:
    """``sample_ratio``: the share of traces started here that are kept (a proxy's
    ``traceparent`` decides for the traces it started)."""
    value = table.data.get("sample_ratio", 1.0)
    number = isinstance(value, int | float) and not isinstance(value, bool)
    if not table.check("sample_ratio", number and 0 <= value <= 1, "must be a number from 0 to 1"):
        return 1.0
    return float(value)


def _endpoint_ok(url: str) -> bool:
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 (raises on a port out of range)
    except ValueError:
        return False
    plain = not (parts.query or parts.fragment or parts.username or parts.password)
    return parts.scheme in ("http", "https") and bool(parts.hostname) and plain


def _installed() -> bool:
    try:
        return all(find_spec(name) is not None for name in _NEEDED)
    except ImportError:  # a parent package missing (or blocked)
        return False
