"""What the ``s3-sigv4`` tests share: AWS's documented example credentials, botocore's
presigner (a client's ``generate_presigned_url``, or its SigV4 query signer for a URL as
given) with its clock fixed, and a verifier for the host a URL names."""

from __future__ import annotations

import datetime
from typing import Any

import botocore.auth
import botocore.credentials
import botocore.session
import pytest
from botocore.auth import S3SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.config import Config

from sidecar.core.urls import parse_url
from sidecar.schemes.base import KeyMaterial, SourceScheme
from tests.support.scheme_contract import build_source

KEY_ID, SECRET = "AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
REGION = "eu-west-1"
OBJECT = "covers/a b/\u00fc!~'(x).jpg"  # a space, non-ASCII, and characters S3 encodes


def fix_botocore_clock(monkeypatch: pytest.MonkeyPatch, seconds: int) -> None:
    """botocore's SigV4 signer reads the time from ``get_current_datetime``: make it
    ``seconds``, so botocore signs at a time the test chose."""
    at = datetime.datetime.fromtimestamp(seconds, tz=datetime.UTC)

    def now(remove_tzinfo: bool = True) -> datetime.datetime:
        return at.replace(tzinfo=None) if remove_tzinfo else at

    monkeypatch.setattr(botocore.auth, "get_current_datetime", now)


def botocore_url(endpoint: str | None, style: str, region: str = REGION,
                 expires_in: int = 3600, key: str = OBJECT, **params: str) -> str:  # fmt: skip
    """A presigned GET of ``key`` in bucket ``books``, path-style or virtual-hosted."""
    client = botocore.session.get_session().create_client(
        "s3", region_name=region, aws_access_key_id=KEY_ID, aws_secret_access_key=SECRET,
        endpoint_url=endpoint,
        config=Config(signature_version="s3v4", s3={"addressing_style": style}),
    )  # fmt: skip
    url: str = client.generate_presigned_url(
        "get_object", Params={"Bucket": "books", "Key": key, **params}, ExpiresIn=expires_in
    )
    return url


def botocore_signed(url: str, expires_in: int = 600, region: str = REGION) -> str:
    """``url`` presigned by botocore's SigV4 query signer, its query as given."""
    credentials = botocore.credentials.Credentials(KEY_ID, SECRET)
    request = AWSRequest(method="GET", url=url)
    S3SigV4QueryAuth(credentials, "s3", region, expires=expires_in).add_auth(request)
    signed: str = request.url
    return signed


def verifier_for(url: str, region: str = REGION, **settings: Any) -> SourceScheme:
    """An ``s3-sigv4`` source holding the example key, for the origin ``url`` names."""
    settings = {"region": region, "public_origin": parse_url(url).origin, **settings}
    material = KeyMaterial(KEY_ID, secret=SECRET.encode())
    return build_source("s3-sigv4", [material], settings=settings)
