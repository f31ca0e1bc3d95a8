"""A client for the signing API, shaped like the JavaScript client users know.

client = SigningClient("http://127.0.0.1:8081", team_id="acme", api_key=os.environ[...])
signed = await client.sign_url("https://cdn.example.com/acme/a.jpg?w=600")
"""

from __future__ import annotations

from types import TracebackType
from typing import Any
from urllib.parse import quote

import aiohttp
import orjson

from sidecar.errors import SigningApiError
from sidecar.policy.signing import API_KEY_HEADER


class SigningClient:
    def __init__(self, base_url: str, team_id: str, api_key: str, *, timeout: float = 5.0) -> None:
        self._base = f"{base_url.rstrip('/')}/public/team/{quote(team_id, safe='')}"
        self._headers = {API_KEY_HEADER: api_key}
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._session: aiohttp.ClientSession | None = None

    async def sign_url(self, url: str, *, expires_in: int | None = None) -> str:
        body = await self._call("GET", "/signUrl", params={"url": url}, expires_in=expires_in)
        return str(body["signedUrl"])

    async def sign_urls(self, urls: list[str], *, expires_in: int | None = None) -> list[str]:
        body = await self._call("POST", "/signUrls", data=orjson.dumps(urls), expires_in=expires_in)
        return [str(url) for url in body["signedUrls"]]

    async def revoke(
        self,
        url: str | None = None,
        *,
        prefix: str | None = None,
        cookies: str | None = None,
        client_ip: str | None = None,
        until: float | None = None,
    ) -> dict[str, Any]:
        """Take back the grant ``url`` carries (``cookies``: a cookie grant for it), or every
        grant under ``prefix``: the revocation record (``id``, ``source``, ``kind``, ...)."""
        fields = {"url": url, "prefix": prefix, "cookies": cookies, "client_ip": client_ip,
                  "until": until}  # fmt: skip
        body = orjson.dumps({name: value for name, value in fields.items() if value is not None})
        return await self._call("POST", "/revoke", data=body, expires_in=None)

    async def _call(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, str] | None = None,
        data: bytes | None = None,
        expires_in: int | None,
    ) -> dict[str, Any]:
        query = dict(params or {})
        if expires_in is not None:
            query["expiresIn"] = str(expires_in)
        session = self._session_or_new()
        async with session.request(
            method, self._base + path, params=query, data=data, headers=self._headers
        ) as response:
            payload = orjson.loads(await response.read() or b"{}")
            if response.status != 200:
                message = payload.get("error", "") if isinstance(payload, dict) else ""
                raise SigningApiError(response.status, str(message))
            return dict(payload)

    def _session_or_new(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=self._timeout)
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    async def __aenter__(self) -> SigningClient:
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()
