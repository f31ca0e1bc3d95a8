"""A warning when two sources hold one key: the same secret bytes, or the same public key
(any scheme). A URL or token signed for one then verifies at the other wherever their
URL shapes coincide, so one source's signer can open the other's files.

The material is only hashed (SHA-256, kept in memory for this load), never shown: the
warning names the sources and key ids. One pass over every key: near-linear.
"""

from __future__ import annotations

import hashlib

from sidecar.config.fields import Problems
from sidecar.policy.settings import SourceSettings


def warn_shared_keys(sources: list[tuple[SourceSettings, str]], problems: Problems) -> None:
    holders: dict[bytes, list[tuple[str, str, str]]] = {}  # digest -> (source, key, file)
    kinds: dict[bytes, str] = {}
    for source, file in sources:
        if source.signatures is None:
            continue
        for key in source.signatures.key_material():
            digest = hashlib.sha256(key.kind.encode() + b"\0" + key.material).digest()
            holders.setdefault(digest, []).append((source.name, key.id, file))
            kinds[digest] = key.kind
    for digest, held in holders.items():
        if len({name for name, _, _ in held}) < 2:
            continue  # two ids of one source: a rotation, not a shared key
        files = {file for _, _, file in held}
        named = ", ".join(
            f"'{name}' (key '{key_id}'{f', {file}' if len(files) > 1 else ''})"
            for name, key_id, file in held
        )
        problems.warn(
            "sources",
            f"one {kinds[digest]} held by {named}: a URL signed for one verifies at the "
            "others where their URL shapes coincide (give each source its own key)",
        )
