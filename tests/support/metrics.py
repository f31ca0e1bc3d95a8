"""A running sidecar's ``/metrics``, read as Prometheus parses it."""

from __future__ import annotations

import urllib.request

from prometheus_client.parser import text_string_to_metric_families

from sidecar.devtools.local_stack import LocalStack


def metrics_text(stack: LocalStack) -> str:
    with urllib.request.urlopen(stack.metrics_url, timeout=5) as response:
        body: bytes = response.read()
    return body.decode()


def samples(stack: LocalStack, name: str) -> dict[frozenset[tuple[str, str]], float]:
    """Every sample called ``name`` on the stack's /metrics, keyed by its label set."""
    found = {}
    for family in text_string_to_metric_families(metrics_text(stack)):
        for item in family.samples:
            if item.name == name:
                found[frozenset(item.labels.items())] = item.value
    return found


def verifications_total(stack: LocalStack) -> float:
    """Every decision the stack's sidecar has made (all sources, results, decisions)."""
    return sum(samples(stack, "signed_url_verifications_total").values())


def sample(stack: LocalStack, name: str, **labels: str) -> float:
    """One sample's value (0 when the series does not exist)."""
    return samples(stack, name).get(frozenset(labels.items()), 0.0)
