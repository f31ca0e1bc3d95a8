"""A many-tenant configuration, as an image platform with a source per customer has:
``count`` md5-token sources, each with its own key file, split over included files
(``include = ["sources.d/*.toml"]``) the way GitOps repositories and ConfigMaps hold them.
Used by the scale benchmark and the scale tests.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass, field
from pathlib import Path

from sidecar.schemes import md5_token

SOURCES_PER_FILE = 1_000
INCLUDE = "sources.d/*.toml"


@dataclass
class Tenants:
    folder: Path
    count: int
    listen: str
    seed: str = field(default_factory=lambda: secrets.token_hex(16))

    @property
    def config(self) -> Path:
        return self.folder / "sidecar.toml"

    def name(self, index: int) -> str:
        return f"tenant-{index:05d}"

    def token(self, index: int) -> bytes:
        # Distinct per tenant and per run; derived, so nothing has to keep 10,000 of them.
        return hashlib.sha256(f"{self.seed}:{index}".encode()).hexdigest().encode()

    def signed_uri(self, index: int, file: str = "photo.jpg") -> str:
        unsigned = f"/{self.name(index)}/{file}"
        digest = md5_token.signature(unsigned.encode(), self.token(index)).hex()
        return f"{unsigned}?{md5_token.SIGNATURE_PARAM}={digest}"

    def write(self) -> Path:
        """The main file (server settings and the include) and one file per thousand sources."""
        (self.folder / "keys").mkdir(parents=True, exist_ok=True)
        (self.folder / "sources.d").mkdir(exist_ok=True)
        for first in range(0, self.count, SOURCES_PER_FILE):
            self.write_part(range(first, min(first + SOURCES_PER_FILE, self.count)))
        self.config.write_text(
            f'include = ["{INCLUDE}"]\ninclude_key_roots = ["keys"]\n\n'
            f'[server]\nlisten = "{self.listen}"\n',
            encoding="utf-8",
        )
        return self.config

    def write_part(self, indexes: range) -> Path:
        """One included file holding the sources ``indexes`` (written whole, then renamed,
        as a ConfigMap update is: a reload never reads half a file)."""
        tables = []
        for index in indexes:
            (self.folder / "keys" / f"{self.name(index)}.key").write_bytes(self.token(index))
            tables.append(
                f'[[sources]]\nname = "{self.name(index)}"\nscheme = "md5-token"\n'
                f'path_prefix = "/{self.name(index)}/"\n'
                f'  [[sources.keys]]\n  id = "k1"\n'
                f'  secret_file = "../keys/{self.name(index)}.key"\n'
            )
        part = self.folder / "sources.d" / f"tenants-{indexes.start:05d}.toml"
        temporary = part.with_name(f".{part.name}.new")
        temporary.write_text("\n".join(tables), encoding="utf-8")
        temporary.rename(part)
        return part
