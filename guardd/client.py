"""Making a client program obey guardd. Standard library and httpx only: importable without the daemon.

- :class:`KillSwitch` reads the switch file (contract §3) and answers ``check()`` in microseconds: it re-reads the
  file only when its ``stat`` changes. Given an ``http(s)://`` URL of guardd's HTTP service instead of a path, it
  keeps the last document and refreshes it at most once a second with a conditional request (``If-None-Match``).
  It lives in :mod:`guardd.client_switch`, with the dead-guard policy.
- :class:`LedgerWriter` appends one canonical ledger line per request, safely from many processes at once (one
  ``write`` of the whole line under an advisory lock).
- :class:`GuardedTransport` / :class:`AsyncGuardedTransport` wrap an httpx transport: before a request to a
  completion endpoint they call ``check()`` (a blocked request never reaches the network); after the response
  they record its usage — from the JSON body, or from the final SSE chunk of a stream (a stream that ends without
  it is recorded by id and without cost, see :mod:`guardd.client_stream`) — to the ledger, with the
  health fields of contract §10: ``latency_ms`` (from sending the request to the end of its body or stream),
  ``status`` (the HTTP status), and for a request that failed ``ok: false`` with ``error`` (the error body's
  message, or the class name of the exception the transport raised). ``key`` is the redacted preview of the
  bearer key the request carried (``…abc1``), so ``guardd report --by key`` attributes the spend. A failed
  request carries no usage and is recorded at cost 0 (OpenRouter bills completed generations only).

With the OpenAI SDK (openai 3.x uses ``httpx2``, openai 1.x/2.x ``httpx``; pass the matching inner transport)::

    import httpx2, openai
    from guardd.client import GuardedTransport, KillSwitch, LedgerWriter
    guard = GuardedTransport(KillSwitch("/run/guardd/killswitch.json", budgets=["team-search"]),
                             LedgerWriter("/var/log/llm/usage.jsonl", labels={"team": "search"}),
                             inner=httpx2.HTTPTransport())
    client = openai.OpenAI(base_url="https://openrouter.ai/api/v1", http_client=httpx2.Client(transport=guard))
"""

from __future__ import annotations

import fcntl
import json
import os
import time
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from guardd.client_stream import tee
from guardd.client_switch import BudgetExceeded, KillSwitch

__all__ = ["AsyncGuardedTransport", "BudgetExceeded", "GuardedTransport", "KillSwitch", "LedgerWriter"]

COMPLETION_PATHS = ("/chat/completions", "/completions", "/responses", "/messages", "/embeddings")


class LedgerWriter:
    """Appends canonical ledger lines (contract §2) to ``path``; many processes may share one file."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        labels: dict[str, str] | None = None,
        fsync: bool = False,
        key: str | None = None,
    ) -> None:
        self.path = os.fspath(path)
        self.labels = dict(labels or {})
        self.fsync = fsync
        self.key = key

    def write(self, event: dict[str, Any]) -> None:
        """Append one event; ``ts`` defaults to now and the writer's labels are added (the event's own win)."""
        record = dict(event)
        record.setdefault("ts", datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"))
        if self.labels or record.get("labels"):
            record["labels"] = {**self.labels, **(record.get("labels") or {})}
        if self.key and "key" not in record:
            record["key"] = self.key
        line = (json.dumps(record, separators=(",", ":"), default=str) + "\n").encode()
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o640)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            try:
                os.write(fd, line)
                if self.fsync:
                    os.fsync(fd)
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)

    def record_response(self, body: dict[str, Any], **health: Any) -> None:
        """Record an OpenRouter (OpenAI-shaped) response or final stream chunk carrying ``usage``; ``health``
        adds fields such as ``latency_ms``, ``status`` and ``key`` (None values are left out)."""
        usage = body.get("usage")
        if not isinstance(usage, dict):
            return
        event: dict[str, Any] = {
            **health,
            "id": body.get("id"),
            "model": body.get("model"),
            "prompt_tokens": usage.get("prompt_tokens") or 0,
            "completion_tokens": usage.get("completion_tokens") or 0,
            "reasoning_tokens": (usage.get("completion_tokens_details") or {}).get("reasoning_tokens") or 0,
            "cached_tokens": (usage.get("prompt_tokens_details") or {}).get("cached_tokens") or 0,
        }
        if usage.get("cost") is not None:
            event["cost"] = usage["cost"]
        if body.get("provider"):
            event["provider"] = body["provider"]
        self.write({k: v for k, v in event.items() if v is not None})

    def record_failure(
        self,
        error: str,
        *,
        status: int | None = None,
        latency_ms: float | None = None,
        model: str | None = None,
        key: str | None = None,
    ) -> None:
        """Record a request that failed (an HTTP error, or an exception before any response): ``ok: false``,
        cost 0, and what is known about it."""
        event = {"ok": False, "cost": 0, "error": error[:200], "status": status, "latency_ms": latency_ms}
        event.update(model=model, key=key)
        self.write({k: v for k, v in event.items() if v is not None})

    def record_unfinished(self, first: dict[str, Any], ending: str, error: str | None = None, **health: Any) -> None:
        """Record a stream that ended without its usage chunk (see :mod:`guardd.client_stream`): the generation id,
        model and provider of its ``first`` chunk, no cost and no token counts (unknown: guardd counts it as
        unpriced, never $0), the label ``stream`` = ``ending``, and for a failed read ``ok: false`` and ``error``.
        ``health`` as in :meth:`record_response`; its ``model`` (the request's) is used when no chunk came."""
        event: dict[str, Any] = {**health, "id": first.get("id"), "labels": {"stream": ending}}
        for name in ("model", "provider"):
            if isinstance(first.get(name), str) and first[name]:
                event[name] = first[name]
        if error is not None:
            event.update(ok=False, error=error[:200])
        self.write({k: v for k, v in event.items() if v is not None})


def _key_preview(request: Any) -> str | None:
    """The redacted preview (``…abc1``) of the bearer key a request carries, never the key itself."""
    auth = request.headers.get("authorization") or ""
    secret = auth[7:].strip() if auth[:7].lower() == "bearer " else ""
    return f"…{secret[-4:]}" if len(secret) > 8 else None


def _request_model(request: Any) -> str | None:
    try:
        body = json.loads(request.content)
    except (ValueError, TypeError, AttributeError, RuntimeError):
        return None
    model = body.get("model") if isinstance(body, dict) else None
    return model if isinstance(model, str) else None


def _error_text(response: Any) -> str:
    """The message of an OpenRouter/OpenAI error body, else the status line."""
    try:
        body = json.loads(response.content)
        message = body["error"]["message"]
        if isinstance(message, str) and message:
            return message
    except (ValueError, TypeError, KeyError, AttributeError):
        pass
    return f"HTTP {response.status_code}"


def _ms_since(start: float) -> float:
    return round((time.monotonic() - start) * 1000, 3)


class _Call:
    """One guarded completion request: when it started and what the ledger should know about it."""

    def __init__(self, request: Any, ledger: LedgerWriter) -> None:
        self.request, self.ledger = request, ledger
        self.start = time.monotonic()
        self.key = _key_preview(request) if ledger.key is None else None

    def failed(self, exc: BaseException) -> None:
        self.ledger.record_failure(
            type(exc).__name__, latency_ms=_ms_since(self.start), model=_request_model(self.request), key=self.key
        )

    def error_response(self, response: Any) -> None:
        self.ledger.record_failure(
            _error_text(response),
            status=response.status_code,
            latency_ms=_ms_since(self.start),
            model=_request_model(self.request),
            key=self.key,
        )

    def record(self, body: dict[str, Any], status: int) -> None:
        self.ledger.record_response(body, latency_ms=_ms_since(self.start), status=status, key=self.key)

    def unfinished(self, first: dict[str, Any], status: int, ending: str, exc: BaseException | None) -> None:
        self.ledger.record_unfinished(
            first,
            ending,
            None if exc is None else type(exc).__name__,
            latency_ms=_ms_since(self.start),
            status=status,
            key=self.key,
            model=_request_model(self.request),
        )


def _is_completion(request: Any) -> bool:
    return bool(request.method == "POST" and request.url.path.endswith(COMPLETION_PATHS))


def _record_json(response: Any, call: _Call) -> None:
    try:
        body = json.loads(response.content, parse_float=Decimal)
    except ValueError:
        return
    if isinstance(body, dict):
        call.record(body, response.status_code)


def _default_transport(async_: bool) -> Any:
    import httpx

    return httpx.AsyncHTTPTransport() if async_ else httpx.HTTPTransport()


def _is_stream(response: Any) -> bool:
    return "text/event-stream" in response.headers.get("content-type", "")


def _teed(response: Any, request: Any, call: _Call, async_: bool) -> Any:
    """The same response, its stream teed so that its usage is recorded when the stream closes."""
    return type(response)(
        response.status_code,
        headers=response.headers,
        stream=tee(response, call, async_=async_),
        extensions=response.extensions,
        request=request,
    )


class GuardedTransport:
    """An httpx (or httpx2) transport that refuses completions while the switch blocks them, and records usage.

    Duck-typed on purpose: it works inside ``httpx.Client`` and ``httpx2.Client`` alike, given an ``inner``
    transport of the same library.
    """

    def __init__(
        self, switch: KillSwitch, ledger: LedgerWriter | None = None, inner: Any = None, estimate: float | None = None
    ) -> None:
        self.switch, self.ledger, self.estimate = switch, ledger, estimate
        self.inner = inner if inner is not None else _default_transport(False)

    def handle_request(self, request: Any) -> Any:
        completion = _is_completion(request)
        if completion:
            self.switch.check(self.estimate)
        if not completion or self.ledger is None:
            return self.inner.handle_request(request)
        call = _Call(request, self.ledger)
        try:
            response = self.inner.handle_request(request)
        except Exception as exc:
            call.failed(exc)
            raise
        if _is_stream(response) and response.status_code < 400:
            return _teed(response, request, call, async_=False)
        response.read()
        if response.status_code >= 400:
            call.error_response(response)
        else:
            _record_json(response, call)
        return response

    def close(self) -> None:
        self.inner.close()

    def __enter__(self) -> GuardedTransport:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class AsyncGuardedTransport:
    """The asyncio twin of :class:`GuardedTransport` (for ``httpx.AsyncClient`` / ``openai.AsyncOpenAI``)."""

    def __init__(
        self, switch: KillSwitch, ledger: LedgerWriter | None = None, inner: Any = None, estimate: float | None = None
    ) -> None:
        self.switch, self.ledger, self.estimate = switch, ledger, estimate
        self.inner = inner if inner is not None else _default_transport(True)

    async def handle_async_request(self, request: Any) -> Any:
        completion = _is_completion(request)
        if completion:
            self.switch.check(self.estimate)
        if not completion or self.ledger is None:
            return await self.inner.handle_async_request(request)
        call = _Call(request, self.ledger)
        try:
            response = await self.inner.handle_async_request(request)
        except Exception as exc:
            call.failed(exc)
            raise
        if _is_stream(response) and response.status_code < 400:
            return _teed(response, request, call, async_=True)
        await response.aread()
        if response.status_code >= 400:
            call.error_response(response)
        else:
            _record_json(response, call)
        return response

    async def aclose(self) -> None:
        await self.inner.aclose()

    async def __aenter__(self) -> AsyncGuardedTransport:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()
