"""The OpenRouter HTTP API (see ../shared/reference/openrouter-api.md), wrapped around one httpx.AsyncClient.

Errors are translated here and nowhere else: timeouts, connection errors, 5xx and 429 become
:class:`SourceUnavailable` (retried with exponential backoff and jitter, honouring ``Retry-After``); 401/402/403
become :class:`SourceRejected` naming the (redacted) key and whether a management key is needed; an answer that
is not JSON or not of the documented shape becomes :class:`SourceMalformed`. Shapes are read tolerantly: older
and newer field sets, numbers or strings, nullable limits.
"""

from __future__ import annotations

import asyncio
import random
from typing import Any

import httpx

from guardd import __version__
from guardd.core.redact import mask, redact_text
from guardd.errors import SourceError, SourceMalformed, SourceRejected, SourceUnavailable

HEADERS = {
    "HTTP-Referer": "https://github.com/guardd/guardd",
    "X-Title": "guardd",
    "User-Agent": f"guardd/{__version__}",
}


class OpenRouterClient:
    def __init__(self, http: httpx.AsyncClient, base_url: str, retries: int = 3, backoff: float = 0.5) -> None:
        self.http = http
        self.base_url = base_url.rstrip("/")
        self.retries = retries
        self.backoff = backoff

    async def _request(self, method: str, path: str, key: str | None, **kwargs: Any) -> Any:
        url = f"{self.base_url}{path}"
        headers = dict(HEADERS)
        if key:
            headers["Authorization"] = f"Bearer {key}"
        who = mask(key) if key else "no key"
        last: SourceError | None = None
        for attempt in range(self.retries + 1):
            try:
                response = await self.http.request(method, url, headers=headers, **kwargs)
            except httpx.TimeoutException as exc:
                last = SourceUnavailable(f"{method} {path}: timed out ({type(exc).__name__})")
            except httpx.HTTPError as exc:
                last = SourceUnavailable(f"{method} {path}: {redact_text(str(exc)) or type(exc).__name__}")
            else:
                status = response.status_code
                if status < 400:
                    try:
                        return response.json()
                    except ValueError:
                        raise SourceMalformed(f"{method} {path}: the answer is not JSON", status) from None
                message = _error_message(response)
                if status in (401, 402, 403):
                    hint = " (this needs a management key)" if "management" in message.lower() else ""
                    raise SourceRejected(f"{method} {path} with key {who}: HTTP {status}: {message}{hint}", status)
                if status == 429 or status >= 500:
                    retry_after = _retry_after(response)
                    last = SourceUnavailable(f"{method} {path}: HTTP {status}: {message}", status, retry_after)
                else:
                    raise SourceError(f"{method} {path}: HTTP {status}: {message}", status)
            if attempt < self.retries:
                delay = last.retry_after if last and last.retry_after else self.backoff * 2**attempt
                await asyncio.sleep(min(delay, 30.0) * random.uniform(0.8, 1.2))
        assert last is not None
        raise last

    async def key_info(self, key: str) -> dict[str, Any]:
        """``GET /key`` (legacy ``/auth/key`` when that is 404) for ``key``: its usage and limits."""
        try:
            body = await self._request("GET", "/key", key)
        except SourceError as exc:
            if exc.status != 404:
                raise
            body = await self._request("GET", "/auth/key", key)
        return _data(body, "/key")

    async def credits(self, management_key: str) -> dict[str, Any]:
        return _data(await self._request("GET", "/credits", management_key), "/credits")

    async def list_keys(self, management_key: str) -> list[dict[str, Any]]:
        keys: list[dict[str, Any]] = []
        offset = 0
        while True:
            body = await self._request(
                "GET", "/keys", management_key, params={"offset": offset, "include_disabled": "true"}
            )
            page = body.get("data") if isinstance(body, dict) else None
            if not isinstance(page, list):
                raise SourceMalformed("GET /keys: no data list")
            keys += [k for k in page if isinstance(k, dict)]
            if len(page) < 100:
                return keys
            offset += len(page)

    async def set_disabled(self, management_key: str, key_hash: str, disabled: bool) -> dict[str, Any]:
        body = await self._request("PATCH", f"/keys/{key_hash}", management_key, json={"disabled": disabled})
        return _data(body, "/keys/{hash}")

    async def models(self) -> list[dict[str, Any]]:
        body = await self._request("GET", "/models", None)
        data = body.get("data") if isinstance(body, dict) else None
        if not isinstance(data, list):
            raise SourceMalformed("GET /models: no data list")
        return [m for m in data if isinstance(m, dict)]

    async def generation(self, key: str, generation_id: str, attempts: int = 4) -> dict[str, Any] | None:
        """``GET /generation?id=``; the record appears ~1 s after a completion, so 404s are retried."""
        for attempt in range(attempts):
            try:
                return _data(
                    await self._request("GET", "/generation", key, params={"id": generation_id}), "/generation"
                )
            except SourceError as exc:
                if exc.status != 404:
                    raise
            await asyncio.sleep(0.5 * 2**attempt)
        return None


def _data(body: Any, path: str) -> dict[str, Any]:
    data = body.get("data") if isinstance(body, dict) else None
    if not isinstance(data, dict):
        raise SourceMalformed(f"{path}: the answer has no data object")
    return data


def _error_message(response: httpx.Response) -> str:
    try:
        body = response.json()
        error = body.get("error") if isinstance(body, dict) else None
        if isinstance(error, dict) and error.get("message"):
            return redact_text(str(error["message"]))[:300]
    except ValueError:
        pass
    return redact_text(response.text[:200]) or response.reason_phrase


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after")
    try:
        return max(0.0, float(value)) if value else None
    except ValueError:
        return None
