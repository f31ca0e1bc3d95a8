"""Configuration: one TOML file (and the files it includes) → frozen ``Settings``.

The only I/O of configuration lives here: reading the file, key files and the
environment. Every problem is collected and reported together (``ConfigError``).
"""

from sidecar.config.loader import load as load
from sidecar.errors import ConfigError as ConfigError
