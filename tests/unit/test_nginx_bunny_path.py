"""The shipped nginx files of Bunny's path form: its auth location is
signed-url-auth.conf's but for the URI it sends and its cache key (so a change to one is
made to both), and its two maps split a URI as the docs say."""

from __future__ import annotations

import re

from sidecar.devtools.nginx_conf import shipped_dir
from tests.support.paths import REPO

DIFFERENCES = {
    "proxy_set_header X-Original-URI $bunny_path_uri;": (
        "proxy_set_header X-Original-URI $request_uri;"
    ),
    'proxy_cache_key "bunny-path $request_method $scheme://$host$request_uri";': (
        'proxy_cache_key "$request_method $scheme://$host$request_uri";'
    ),
}


def _location(text: str, name: str) -> list[str]:
    """The directives of ``location = name { … }``, comments and blank lines left out."""
    body = text[text.index(f"location = {name} {{") :]
    body = body[: body.index("\n}")]
    lines = (line.split("#")[0].strip() for line in body.splitlines()[1:])
    return [line for line in lines if line]


def test_the_auth_locations_differ_only_in_the_uri_they_send() -> None:
    folder = shipped_dir()
    main = _location((folder / "signed-url-auth.conf").read_text(), "/_signed_url_auth")
    ours = _location(
        (folder / "signed-url-bunny-path.conf").read_text(), "/_signed_url_auth_bunny_path"
    )
    assert [DIFFERENCES.get(line, line) for line in ours] == main
    assert set(DIFFERENCES) <= set(ours)
    # The commented country header too: render() uncomments it in both.
    country = "# proxy_set_header X-Country-Code $geoip2_data_country_code;"
    assert country in (folder / "signed-url-bunny-path.conf").read_text()


def _maps() -> dict[str, tuple[re.Pattern[str], str]]:
    text = (shipped_dir() / "signed-url-bunny-path-map.conf").read_text()
    found = re.findall(r'map \$request_uri \$(\w+) \{\n\s+"~(.+)" "?([^";]+)"?;', text)
    return {name: (re.compile(pattern), value) for name, pattern, value in found}


def _apply(name: str, uri: str) -> str | None:
    pattern, value = _maps()[name]
    match = pattern.search(uri)
    if match is None:
        return None
    return re.sub(r"\$(\d)", lambda group: match[int(group[1])] or "", value)


def test_the_maps_split_the_path_form_and_leave_all_else() -> None:
    token = "bcdn_token=HS256-abc_-&token_path=%2Fv%2F&expires=9"
    assert _apply("bunny_path_file", f"/{token}/v/a.ts") == "/v/a.ts"
    assert _apply("bunny_path_uri", f"/{token}/v/a.ts") == f"/v/a.ts?{token}"
    assert _apply("bunny_path_uri", f"/{token}/v/a.ts?x=1") == f"/v/a.ts?{token}?x=1"
    assert _apply("bunny_path_uri", f"/{token}/v/") == f"/v/?{token}"
    for other in (f"/{token}/v/", f"/{token}/v%2Fa.ts", f"/{token}/{token}/v/a.ts",
                  f"/v/{token}/a.ts", f"/{token}", "/v/a.ts"):  # fmt: skip
        assert _apply("bunny_path_file", other) is None, other
    for other in (f"/{token}/v%2Fa.ts", f"/{token}/{token}/v/a.ts", f"/v/{token}/a.ts"):
        assert _apply("bunny_path_uri", other) is None, other


def test_the_docs_show_both_files_in_full() -> None:
    page = (REPO / "docs" / "schemes" / "bunny.md").read_text()
    for name in ("signed-url-bunny-path-map.conf", "signed-url-bunny-path.conf"):
        text = (shipped_dir() / name).read_text()
        assert f"`{name}`:\n\n```nginx\n{text}```\n" in page, name
