"""``[[sources.keys]]``: key material read from mounted files, the environment or inline.

Mounted files come first in the docs because that is how secrets should arrive; their
bytes are handed to the source's scheme, never logged or shown.
"""

from __future__ import annotations

import os

from sidecar.config.fields import NAME, NAME_RULE, Table, read_file
from sidecar.config.trust import KeyPlaces
from sidecar.schemes.base import JWK, PUBLIC_KEY, SALT, SECRET, KeyMaterial
from sidecar.schemes.jwt_keys import jwks_file_keys

KEY_FIELDS = {
    "id", "secret", "secret_file", "secret_env", "public_key_file", "private_key_file",
    "salt", "salt_file", "salt_env", "algorithm",
}  # fmt: skip
SECRET_SOURCES = ("secret_file", "secret_env", "secret")
SALT_SOURCES = ("salt_file", "salt_env", "salt")
WEAK_SECRET_BYTES = 16


def load_keys(
    table: Table, places: KeyPlaces, env: dict[str, str], accepted: frozenset[str]
) -> tuple[list[KeyMaterial], bool]:
    """The keys that loaded, and whether every configured key did."""
    raw_keys = table.get("keys", list, []) or []
    keys: list[KeyMaterial] = []
    ok = True
    for index, raw in enumerate(raw_keys):
        key = _key(Table(raw if isinstance(raw, dict) else {}, f"{table.where}.keys[{index}]",
                          table.problems), places, env, accepted)  # fmt: skip
        ok = ok and key is not None
        if key is not None:
            keys.append(key)
    if JWK in accepted:
        keys += _jwks_file(table, places)
    ids = [key.id for key in keys]
    duplicated = sorted({i for i in ids if ids.count(i) > 1})
    ok = table.check("keys", not duplicated, f"duplicate key id {duplicated}") and ok
    return keys, ok


def _key(
    table: Table, places: KeyPlaces, env: dict[str, str], accepted: frozenset[str]
) -> KeyMaterial | None:
    table.check_names(KEY_FIELDS)
    key_id = table.require("id", str)
    if key_id is not None:
        table.check("id", bool(NAME.fullmatch(key_id)), NAME_RULE)
    given = [name for name in SECRET_SOURCES if name in table.data]
    secret = None
    # A key pinned to an algorithm (JWK) is a secret or a public key, never both.
    jwk = JWK in accepted
    public_given = "public_key_file" in table.data
    if jwk and given and public_given:
        table.check("public_key_file", False, "give a secret or public_key_file, not both")
    if SECRET in accepted and not (jwk and public_given):
        if table.check(
            "secret", len(given) == 1, "give exactly one of secret_file, secret_env, secret"
        ):
            secret = read_secret(table, given[0], places, env)
    elif given:
        table.check(given[0], False, "not used by this scheme")
    public = _pem(
        table, "public_key_file", places, required=PUBLIC_KEY in accepted and not (jwk and given)
    )
    private = _pem(table, "private_key_file", places, required=False)
    if PUBLIC_KEY not in accepted:
        for name in ("public_key_file", "private_key_file"):
            table.check(name, name not in table.data, "not used by this scheme")
    salt = _salt(table, places, env, accepted)
    algorithm = _algorithm(table, jwk)
    if key_id is None:
        return None
    key = KeyMaterial(
        key_id, secret=secret, public_key_pem=public, private_key_pem=private, salt=salt,
        algorithm=algorithm,
    )  # fmt: skip
    return key if _complete(key, accepted) else None


def _complete(key: KeyMaterial, accepted: frozenset[str]) -> bool:
    """Whether a key holds everything its scheme reads (a JWK key: its algorithm and
    either a secret or a public key)."""
    if JWK in accepted:
        return key.algorithm is not None and (key.secret is None) != (key.public_key_pem is None)
    if (SECRET in accepted and not key.secret) or (SALT in accepted and not key.salt):
        return False
    return PUBLIC_KEY not in accepted or key.public_key_pem is not None


def _algorithm(table: Table, jwk: bool) -> str | None:
    """The one algorithm a JWK key verifies (the scheme checks its name)."""
    if not jwk:
        table.check("algorithm", "algorithm" not in table.data, "not used by this scheme")
        return None
    return table.require("algorithm", str)


def _jwks_file(table: Table, places: KeyPlaces) -> list[KeyMaterial]:
    """The keys of a source's ``jwks_file``: read (and watched) as a key file is, each
    pinned to its ``alg``. A set that cannot be used is a problem; keys of it left out
    (an encryption key, say) are a warning."""
    value = table.get("jwks_file", str)
    if not value:
        return []
    data = key_file(table, "jwks_file", places, value)
    if data is None:
        return []
    found = jwks_file_keys(data)
    if isinstance(found, str):
        table.check("jwks_file", False, found)
        return []
    keys, skipped = found
    for note in skipped:
        table.problems.warn(f"{table.where}.jwks_file", f"left out {note}")
    return keys


def _salt(
    table: Table, places: KeyPlaces, env: dict[str, str], accepted: frozenset[str]
) -> bytes | None:
    """A key's salt (imgproxy's keys are key and salt pairs), read like its secret."""
    given = [name for name in SALT_SOURCES if name in table.data]
    if SALT not in accepted:
        if given:
            table.check(given[0], False, "not used by this scheme")
        return None
    if table.check("salt", len(given) == 1, "give exactly one of salt_file, salt_env, salt"):
        return read_secret(table, given[0], places, env)
    return None


def read_secret(table: Table, kind: str, places: KeyPlaces, env: dict[str, str]) -> bytes | None:
    """The secret a field names: ``…_file`` a file (relative to the config's folder),
    ``…_env`` an environment variable, otherwise the value itself; a file or variable
    only where ``places`` lets this config file reach."""
    value = table.get(kind, str)
    if value is None:
        return None
    if kind.endswith("_file"):
        secret = key_file(table, kind, places, value)
    elif kind.endswith("_env"):
        secret = _variable(table, kind, places, env, value)
    else:
        secret = value.encode()
        table.problems.warn(
            f"{table.where}.{kind}",
            f"an inline secret lives in the config file: prefer {kind}_file (a mounted "
            f"secret) or {kind}_env",
        )
    # Mounted files usually end with a newline the signer never saw.
    secret = secret.rstrip(b"\r\n") if secret is not None else None
    if secret is not None and not table.check(kind, bool(secret), "is empty"):
        return None
    if secret is not None and len(secret) < WEAK_SECRET_BYTES:
        table.problems.warn(
            f"{table.where}.{kind}",
            f"shorter than {WEAK_SECRET_BYTES} bytes: one signed URL lets it be guessed "
            "offline (sidecar token new makes 256-bit ones)",
        )
    return secret


def _pem(table: Table, name: str, places: KeyPlaces, *, required: bool) -> bytes | None:
    value = table.get(name, str)
    if value is None:
        table.check(name, not required, "is required")
        return None
    return key_file(table, name, places, value)


def key_file(table: Table, name: str, places: KeyPlaces, value: str) -> bytes | None:
    """A key file's bytes, when it lies where this config file may read keys."""
    path = os.path.join(places.folder, value)  # an absolute value stays as it is
    problem = places.file_problem(path)
    if problem is not None:
        table.check(name, False, problem)
        return None
    return read_file(table, name, path)


def _variable(
    table: Table, kind: str, places: KeyPlaces, env: dict[str, str], name: str
) -> bytes | None:
    problem = places.env_problem(name)
    if problem is not None:
        table.check(kind, False, problem)
        return None
    found = env.get(name)
    table.check(kind, found is not None, f"environment variable '{name}' is not set")
    return found.encode() if found is not None else None
