"""The Starlette application of the HTTP service: routes, token rules, the body limit and JSON errors.

Every POST is checked in this order (contract §8): authentication (no token configured: 403; a missing or
wrong bearer token: 401, compared in constant time), size (over 10 MiB by ``Content-Length`` or by the bytes
actually streamed: 413), then the body (400). Every error is ``{"error": TEXT}``; the state that cannot be
written (a full disk) is 503 with the reason and ``Retry-After``.
"""

from __future__ import annotations

import hmac
import json
import logging
import time
import uuid
from datetime import UTC, datetime
from typing import Any, Literal

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from guardd.core.periods import parse_duration
from guardd.core.switch import GLOBAL_SCOPE
from guardd.errors import NotApplied, StoreError
from guardd.http import broadcast, metrics, page, push
from guardd.http.backend import Backend
from guardd.http.feed import Snapshot, SwitchFeed
from guardd.http.openapi import document as openapi_document
from guardd.store.api import IngestSummary

log = logging.getLogger("guardd.http")

MAX_BODY = 10 * 1024 * 1024
MAX_WAIT = 60.0
STORE_RETRY_AFTER = 30
"""Seconds a sender is asked to wait (``Retry-After``) when the state cannot be written (a full disk, the shared
store unreachable): the failure is known and passes; the sender keeps the data and sends it again."""
EVENT_TYPES = frozenset({"application/x-ndjson", "application/jsonl", "text/plain"})
PAGE_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'"


class Refused(Exception):
    """Answer ``status`` with ``{"error": message}`` (and ``headers``)."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}


def error(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=headers)


def create_app(backend: Backend, feed: SwitchFeed) -> Starlette:
    """Return the ASGI application serving ``backend`` and the switch ``feed``."""

    async def healthz(request: Request) -> Response:
        alive, reason = feed.alive(datetime.now(UTC))
        problem = reason if not alive else backend.store_error()
        if problem:
            return JSONResponse({"ok": False, "reason": problem}, status_code=503)
        snap = feed.current
        return JSONResponse(
            {"ok": True, "heartbeat_at": snap.heartbeat_at if snap else None, "tripped": bool(snap and snap.tripped)}
        )

    async def metrics_route(request: Request) -> Response:
        snap = await backend.metrics(datetime.now(UTC))
        return Response(metrics.exposition(snap), media_type=metrics.CONTENT_TYPE)

    async def status(request: Request) -> Response:
        return JSONResponse(await backend.status(datetime.now(UTC)))

    async def killswitch(request: Request) -> Response:
        wait = _wait_param(request)
        sent = _etags(request.headers.get("if-none-match"))
        snap = feed.current
        if snap is None:
            snap = await feed.wait_for_change(frozenset(), min(wait or 0, 5.0)) if wait else None
            if snap is None:
                raise Refused(503, "no kill-switch document yet: the daemon has not evaluated")
        reference = sent if sent else frozenset({snap.etag})
        if wait:
            snap = await feed.wait_for_change(reference, wait) or snap
        if sent and (snap.etag in sent or "*" in sent):
            return Response(status_code=304, headers=_switch_headers(snap))
        return Response(snap.body, media_type="application/json", headers=_switch_headers(snap))

    async def trip(request: Request) -> Response:
        return await _manual(request, "trip")

    async def release(request: Request) -> Response:
        return await _manual(request, "release")

    async def _manual(request: Request, action: Literal["trip", "release"]) -> Response:
        _authorize(request, backend)
        body = await _read_body(request)
        fields = _json_object(body)
        unknown = set(fields) - {"budget", "reason", "for"}
        if unknown:
            raise Refused(400, f"unknown field(s): {', '.join(sorted(unknown))} (known: budget, reason, for)")
        budget, reason, duration = fields.get("budget"), fields.get("reason", ""), fields.get("for")
        if budget is not None and (not isinstance(budget, str) or backend.config.budget(budget) is None):
            known = ", ".join(b.name for b in backend.config.budgets) or "none configured"
            raise Refused(400, f"no budget named {budget!r} (budgets: {known}); null acts on every scope")
        if reason is None:
            reason = ""
        if not isinstance(reason, str):
            raise Refused(400, "reason must be a string")
        now = datetime.now(UTC)
        until = None
        if duration is not None:
            try:
                # A duration always carries a unit (contract §4): "10" is refused, not read as seconds.
                has_unit = isinstance(duration, str) and duration.strip()[-1:].isalpha()
                delta = parse_duration(duration) if isinstance(duration, str) and has_unit else None
            except ValueError as exc:
                raise Refused(400, f"for: {exc}") from None
            if delta is None or delta.total_seconds() <= 0:
                raise Refused(400, 'for must be a duration longer than 0s, such as "30m" or "4h"')
            until = now + delta
        scope = budget or GLOBAL_SCOPE
        try:
            doc = await backend.manual(action, scope, until, reason, f"http:{_peer(request)}")
        except NotApplied as exc:  # a shared store's follower recorded it; no leader applied it yet
            raise Refused(503, str(exc)) from None
        return JSONResponse(doc)

    async def events(request: Request) -> Response:
        _authorize(request, backend)
        body = await _read_body(request)
        media = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if media not in EVENT_TYPES:
            raise Refused(415, f"Content-Type must be one of {', '.join(sorted(EVENT_TYPES))}, not {media or 'none'!r}")
        started = time.perf_counter()
        try:
            labels = push.parse_labels_param(request.query_params.getlist("label"))
            parsed = push.parse_events(
                body,
                request.query_params.get("format", "auto"),
                labels,
                backend.config.settings.guardd.max_event_cost,
                request.headers.get("idempotency-key"),
            )
        except push.BodyError as exc:
            raise Refused(400, str(exc)) from None
        result = await backend.ingest(parsed)
        summary = IngestSummary(
            read=parsed.lines,
            stored=result.stored,
            duplicates=result.duplicates,
            quarantined=result.quarantined,
            unpriced=result.unpriced,
            seconds=time.perf_counter() - started,
        )
        return JSONResponse(summary.to_json())

    async def openrouter_broadcast(request: Request) -> Response:
        _authorize(request, backend)
        body = await _read_body(request)
        test = request.headers.get("x-test-connection", "").strip().lower() == "true"
        try:
            decoded = broadcast.decode(body)
        except broadcast.PayloadError as exc:
            raise Refused(400, f"not an OTLP JSON trace export: {exc}") from None
        answer: dict[str, Any] = {"ok": True, "test": test, "generations": len(decoded.lines)}
        answer.update({"skipped": decoded.skipped, "skipped_why": decoded.skipped_why, "test_spans": decoded.tests})
        if decoded.notes:  # answered 200, so the sender will not send these again: say what they were
            log.warning(
                "broadcast: %d span(s) skipped that may be spend (not stored): %s",
                len(decoded.notes),
                "; ".join(decoded.notes[:10]) + ("; …" if len(decoded.notes) > 10 else ""),
            )
        elif decoded.skipped:
            log.debug("broadcast: skipped %s", decoded.skipped_why)
        if decoded.lines:
            parsed = broadcast.to_batch(
                decoded, backend.config.settings.guardd.max_event_cost, f"broadcast:{uuid.uuid4()}"
            )
            result = await backend.ingest(parsed)
            answer.update(stored=result.stored, duplicates=result.duplicates, quarantined=result.quarantined)
        else:
            answer.update(stored=0, duplicates=0, quarantined=0)
        return JSONResponse(answer)

    async def index(request: Request) -> Response:
        now = datetime.now(UTC)
        html = page.render(await backend.status(now), await backend.charts(now), now)
        return HTMLResponse(html, headers={"Content-Security-Policy": PAGE_CSP, "Cache-Control": "no-store"})

    async def openapi(request: Request) -> Response:
        return JSONResponse(openapi_document())

    async def refused(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, Refused)
        return error(exc.status, exc.message, exc.headers)

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        if exc.status_code == 304:
            return Response(status_code=304)
        return error(exc.status_code, str(exc.detail), dict(exc.headers or {}))

    async def store_failed(request: Request, exc: Exception) -> Response:
        # Known and expected (a full disk, the shared store down): the reason and when to retry, one log line, no
        # traceback — the daemon's store health says the rest (status, check, /healthz).
        log.warning("HTTP %s %s answered 503: %s", request.method, request.url.path, exc)
        return error(503, str(exc), {"Retry-After": str(STORE_RETRY_AFTER)})

    async def crashed(request: Request, exc: Exception) -> Response:
        log.error("HTTP %s %s failed: %s", request.method, request.url.path, exc, exc_info=exc)
        return error(500, "internal error; see guardd's log")

    routes = [
        Route("/", index, methods=["GET"]),
        Route("/healthz", healthz, methods=["GET"]),
        Route("/metrics", metrics_route, methods=["GET"]),
        Route("/openapi.json", openapi, methods=["GET"]),
        Route("/v1/status", status, methods=["GET"]),
        Route("/v1/killswitch", killswitch, methods=["GET"]),
        Route("/v1/killswitch/trip", trip, methods=["POST"]),
        Route("/v1/killswitch/release", release, methods=["POST"]),
        Route("/v1/events", events, methods=["POST"]),
        Route("/v1/openrouter/broadcast", openrouter_broadcast, methods=["POST"]),
    ]
    handlers: dict[Any, Any] = {
        Refused: refused,
        HTTPException: http_error,
        StoreError: store_failed,  # handled here, not re-raised to the server as an Exception handler's are
        Exception: crashed,
    }
    return Starlette(routes=routes, exception_handlers=handlers)


def _authorize(request: Request, backend: Backend) -> None:
    http = backend.config.settings.http
    token = http.token_value() if http is not None else None
    if token is None:
        raise Refused(403, "POST is disabled: no [http] token is configured (token, GUARDD_HTTP__TOKEN or http_token)")
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    # compare_digest on equal-length digests: the time taken says nothing about the token or its length.
    expected = _digest(token)
    if scheme.lower() != "bearer" or not hmac.compare_digest(_digest(given.strip()), expected):
        raise Refused(401, "a valid 'Authorization: Bearer <token>' header is required", {"WWW-Authenticate": "Bearer"})


def _digest(text: str) -> bytes:
    import hashlib

    return hashlib.sha256(text.encode("utf-8", "surrogateescape")).digest()


async def _read_body(request: Request) -> bytes:
    length = request.headers.get("content-length")
    if length is not None:
        try:
            declared = int(length)
        except ValueError:
            raise Refused(400, f"Content-Length is not a number: {length!r}") from None
        if declared > MAX_BODY:
            raise Refused(413, f"the body is over {MAX_BODY} bytes")
    chunks: list[bytes] = []
    total = 0
    async for chunk in request.stream():
        total += len(chunk)
        if total > MAX_BODY:
            raise Refused(413, f"the body is over {MAX_BODY} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _json_object(body: bytes) -> dict[str, Any]:
    try:
        value = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise Refused(400, f"the body is not JSON: {exc}") from None
    if not isinstance(value, dict):
        raise Refused(400, 'the body must be a JSON object: {"budget": NAME or null, "reason": TEXT, "for": null}')
    return value


def _wait_param(request: Request) -> float | None:
    raw = request.query_params.get("wait")
    if raw is None:
        return None
    try:
        wait = float(raw)
    except ValueError:
        raise Refused(400, f"wait must be a number of seconds (at most {MAX_WAIT:g}), not {raw!r}") from None
    if not wait >= 0:  # also refuses NaN
        raise Refused(400, f"wait must be 0 or more seconds, not {raw!r}")
    return min(wait, MAX_WAIT)


def _etags(header: str | None) -> frozenset[str]:
    if not header:
        return frozenset()
    return frozenset(tag.strip().removeprefix("W/") for tag in header.split(",") if tag.strip())


def _switch_headers(snap: Snapshot) -> dict[str, str]:
    headers = {"ETag": snap.etag, "Cache-Control": "no-cache"}
    if snap.heartbeat_at:
        headers["Guardd-Heartbeat-At"] = snap.heartbeat_at
    if snap.expires_at:
        headers["Guardd-Expires-At"] = snap.expires_at
    return headers


def _peer(request: Request) -> str:
    return request.client.host if request.client and request.client.host else "unix"
