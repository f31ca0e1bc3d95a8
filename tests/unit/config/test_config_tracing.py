"""``[tracing]`` (sidecar/config/tracing.py): off without the table, every problem named."""

from __future__ import annotations

from pathlib import Path

import pytest

from sidecar import config
from sidecar.errors import ConfigError
from sidecar.policy.settings import Settings, TracingSettings
from tests.support.configs import md5_source, sidecar_config
from tests.support.tokens import BOOKS_TOKEN


def load(tmp_path: Path, tracing: str) -> Settings:
    source = md5_source("books", "/books/", {"k1": BOOKS_TOKEN})
    path = tmp_path / "sidecar.toml"
    path.write_text(sidecar_config(source) + tracing)
    return config.load(path)


def test_off_without_the_table(tmp_path: Path) -> None:
    assert load(tmp_path, "").tracing is None


def test_the_endpoint_is_a_base_url_spans_go_to_its_v1_traces(tmp_path: Path) -> None:
    tracing = load(tmp_path, '[tracing]\notlp_endpoint = "http://collector:4318/"\n').tracing
    assert tracing == TracingSettings("http://collector:4318/v1/traces", "signed-url-sidecar", 1.0)
    text = '[tracing]\notlp_endpoint = "https://c.example/otel"\nservice_name = "img"\n'
    tracing = load(tmp_path, text + "sample_ratio = 0.25\n").tracing
    assert tracing == TracingSettings("https://c.example/otel/v1/traces", "img", 0.25)
    assert load(tmp_path, text + "sample_ratio = 0\n").tracing.sample_ratio == 0.0  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("tracing", "problem"),
    [
        ("[tracing]\n", "tracing.otlp_endpoint: is required"),
        ('[tracing]\notlp_endpoint = "grpc://c:4317"\n', "otlp_endpoint: must be an http"),
        ('[tracing]\notlp_endpoint = "http://:4318"\n', "otlp_endpoint: must be an http"),
        ('[tracing]\notlp_endpoint = "http://u:pw@c:4318"\n', "otlp_endpoint: must be an http"),
        ('[tracing]\notlp_endpoint = "http://c:4318/?a=1"\n', "otlp_endpoint: must be an http"),
        ('[tracing]\notlp_endpoint = "http://c:99999"\n', "otlp_endpoint: must be an http"),
        ('[tracing]\notlp_endpoint = "http://c:4318/v1/traces"\n', "leave out /v1/traces"),
        ('[tracing]\notlp_endpoint = "http://c"\nsample_ratio = 2\n', "sample_ratio: must be"),
        ('[tracing]\notlp_endpoint = "http://c"\nsample_ratio = true\n', "sample_ratio: must be"),
        ('[tracing]\notlp_endpoint = "http://c"\nservice_name = ""\n', "service_name: must be"),
        ('[tracing]\notlp_endpoint = "http://c"\nheaders = 1\n', "unknown field 'headers'"),
    ],
)
def test_problems(tmp_path: Path, tracing: str, problem: str) -> None:
    with pytest.raises(ConfigError) as raised:
        load(tmp_path, tracing)
    assert any(problem in item for item in raised.value.problems), raised.value.problems
    assert "pw" not in str(raised.value.problems)
