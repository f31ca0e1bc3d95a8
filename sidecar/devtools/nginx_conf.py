"""Render the shipped nginx configs (``nginx/``) to run from a private folder.

The demo and the end-to-end tests run the very files operators include, changed only
where a local run must differ: addresses, the image root, and every path nginx writes.
Each change is checked to apply, so the shipped files cannot drift from what is tested.
"""

from __future__ import annotations

import getpass
from pathlib import Path

CONFIG_FILES = (
    "nginx.conf",
    "signed-url-sidecar.conf",
    "signed-url-auth.conf",
    "signed-url-gone.conf",
    "signed-url-bunny-path-map.conf",
    "signed-url-bunny-path.conf",
)
AUTH_INCLUDE = "        include signed-url-auth.conf;\n"
SIDECAR_INCLUDE = "    include signed-url-sidecar.conf;\n"
COUNTRY_HEADER = "    # proxy_set_header X-Country-Code $geoip2_data_country_code;\n"

CATCH_ALL_SERVER = """    server {
        listen 80 default_server;
        server_name _;
        return 444;
    }
"""


def shipped_dir() -> Path:
    """``nginx/`` of the source tree, or its copy inside an installed wheel."""
    package = Path(__file__).resolve().parent.parent
    for candidate in (package / "nginx_files", package.parent / "nginx"):
        if (candidate / "nginx.conf").is_file():
            return candidate
    raise FileNotFoundError("the shipped nginx configs are missing")


def render(
    folder: Path,
    *,
    port: int,
    sidecar: str,
    root: Path,
    host: str = "127.0.0.1",
    http_extra: str = "",
    catch_all: bool = True,
    gone: bool = False,
    country: bool = False,
    bunny_path: bool = False,
) -> Path:
    """Write runnable configs into ``folder``; return the main config file's path.
    Operators' variations, for tests: ``http_extra`` adds directives to ``http {}``;
    ``catch_all=False`` drops the shipped catch-all server, so the image server is nginx's
    default server and answers every Host; ``gone`` includes signed-url-gone.conf (410
    for an expired link); ``country`` passes ``X-Country-Code`` from
    ``$geoip2_data_country_code`` (which ``http_extra`` must then define); ``bunny_path``
    includes signed-url-bunny-path{-map,}.conf (Bunny's path form)."""
    source = shipped_dir()
    folder.mkdir(parents=True, exist_ok=True)
    temp_paths = "".join(
        f"    {kind}_temp_path {folder / ('tmp-' + kind)};\n"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    changes = {
        "nginx.conf": [
            ("user www-data;", f"user {getpass.getuser()};"),
            ("worker_processes auto;", "worker_processes 2;"),
            ("pid /run/nginx.pid;", f"pid {folder / 'nginx.pid'};"),
            ("/var/log/nginx/error.log", str(folder / "error.log")),
            ("/var/log/nginx/access.log", str(folder / "access.log")),
            ("listen 80 default_server;", f"listen {host}:{port} default_server;")
            if catch_all
            else (CATCH_ALL_SERVER, ""),
            ("listen 80;", f"listen {host}:{port};"),
            ("root /srv/images;", f"root {root};"),
            ("http {\n", "http {\n" + temp_paths + http_extra),
        ],
        "signed-url-sidecar.conf": [
            ("server 127.0.0.1:8080;", f"server {sidecar};"),
            ("/var/lib/nginx/signed-url-auth", str(folder / "auth-cache")),
        ],
        "signed-url-auth.conf": [(COUNTRY_HEADER, COUNTRY_HEADER.replace("# ", "", 1))]
        if country
        else [],
        "signed-url-gone.conf": [],
        "signed-url-bunny-path-map.conf": [],
        "signed-url-bunny-path.conf": [(COUNTRY_HEADER, COUNTRY_HEADER.replace("# ", "", 1))]
        if country
        else [],
    }
    if gone:
        changes["nginx.conf"].append(
            (AUTH_INCLUDE, AUTH_INCLUDE + "        include signed-url-gone.conf;\n")
        )
    if bunny_path:
        changes["nginx.conf"] += [
            (SIDECAR_INCLUDE, SIDECAR_INCLUDE + "    include signed-url-bunny-path-map.conf;\n"),
            (AUTH_INCLUDE, AUTH_INCLUDE + "        include signed-url-bunny-path.conf;\n"),
        ]
    for name in CONFIG_FILES:
        text = (source / name).read_text()
        for old, new in changes[name]:
            if old not in text:
                raise ValueError(f"{name}: expected '{old.strip()}' in the shipped config")
            text = text.replace(old, new)
        (folder / name).write_text(text)
    return folder / "nginx.conf"
