"""Istio's schemas for the istio overlay: its own AuthorizationPolicy CRD (vendored, as
published, in tests/schemas/istio/), read as a JSON schema; and the mesh config fragment's
structural schema (tests/schemas/istio/mesh-config.yaml).

The CRD's OpenAPI schema is made strict as ``kubectl apply --validate=strict`` is (an
unknown field fails instead of being pruned). Its CEL rules (x-kubernetes-validations)
are no JSON schema: the ones about the fields the overlay writes (one of selector,
targetRef, targetRefs; no wildcard or empty key in matchLabels) are checked by
``cel_rules``, the rest are not evaluated here.
"""

from __future__ import annotations

from typing import Any

import jsonschema
import yaml

from tests.support.paths import REPO

SCHEMAS = REPO / "tests" / "schemas" / "istio"
MESH_CONFIG_SCHEMA = yaml.safe_load((SCHEMAS / "mesh-config.yaml").read_text())


def strict(schema: Any) -> Any:
    """``schema`` with every object that lists its properties closed to others."""
    if isinstance(schema, list):
        return [strict(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    closed = {key: strict(value) for key, value in schema.items()}
    open_ended = schema.get("x-kubernetes-preserve-unknown-fields") is True
    if "properties" in schema and "additionalProperties" not in schema and not open_ended:
        closed["additionalProperties"] = False
    return closed


def crd_schemas(defs: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    """(apiVersion, kind) -> the JSON schema of each served version of the vendored CRDs;
    ``defs`` holds ``metadata``, the schema an object's metadata is held to."""
    found = {}
    for path in sorted(SCHEMAS.glob("*.istio.io.yaml")):
        crd = yaml.safe_load(path.read_text())
        group, kind = crd["spec"]["group"], crd["spec"]["names"]["kind"]
        for version in crd["spec"]["versions"]:
            if not version["served"]:
                continue
            body = version["schema"]["openAPIV3Schema"]["properties"]
            found[(f"{group}/{version['name']}", kind)] = {
                "$defs": defs,
                "type": "object",
                "required": ["apiVersion", "kind", "metadata", "spec"],
                "additionalProperties": False,
                "properties": {
                    "apiVersion": {"const": f"{group}/{version['name']}"},
                    "kind": {"const": kind},
                    "metadata": {"$ref": "#/$defs/metadata"},
                    "spec": strict(body["spec"]),
                },
            }
    return found


def cel_rules(doc: dict[str, Any]) -> None:
    """The CRD's CEL rules on the fields an AuthorizationPolicy here writes."""
    spec = doc["spec"]
    targets = [name for name in ("selector", "targetRef", "targetRefs") if name in spec]
    if len(targets) > 1:
        raise jsonschema.ValidationError("only one of targetRefs or selector can be set")
    labels = spec.get("selector", {}).get("matchLabels", {})
    for key, value in labels.items():
        if not key or "*" in key or "*" in value:
            raise jsonschema.ValidationError(f"no wildcard or empty key in matchLabels: {key}")


def validate_mesh_config(fragment: dict[str, Any]) -> None:
    jsonschema.Draft202012Validator(MESH_CONFIG_SCHEMA).validate(fragment)
