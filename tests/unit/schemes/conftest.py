"""The decision under test for CloudFront URLs signed by botocore: a loaded config."""

from __future__ import annotations

import pytest

from sidecar import config
from sidecar.policy.decide import Decider
from tests.support.cloudfront import POLICY_CONFIG, pair


@pytest.fixture(scope="module")
def policy(tmp_path_factory: pytest.TempPathFactory) -> Decider:
    folder = tmp_path_factory.mktemp("cloudfront")
    for kind in ("rsa", "ecdsa"):
        (folder / f"{kind}.pub.pem").write_bytes(pair(kind, "botocore")[1])
        (folder / f"{kind}.pem").write_bytes(pair(kind, "botocore")[0])
    (folder / "other.pub.pem").write_bytes(pair("rsa", "other-source")[1])
    (folder / "sidecar.toml").write_text(POLICY_CONFIG)
    return Decider(config.load(folder / "sidecar.toml"))
